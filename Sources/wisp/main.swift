import WispCore
@main struct Wisp { static func main() { print("wisp") } }
