/// Device logs in the console (`thing.log.post` on `/sys/{pk}/{dn}/thing/log/post`):
/// `{"id":"N","version":"1.0","params":[{"utcTime":"2026-12-06T03:40:12.123+0000",
/// "logLevel":"WARN","module":"wisp","code":"","traceContext":"","logContent":"…"}],
/// "method":"thing.log.post"}`, every value a string, at most `maxEntries` entries and
/// `maxContent` bytes of content each. The console's switch: the device asks with
/// `thing.config.log.get` (params `{"configScope":"device","getType":"content"}`) at every
/// connect and reads `data.content.mode` from the reply (0 off, 1 on); pushes on
/// `…/thing/config/log/push` carry the same `content` in `params`.
public enum LogPost {
    public static let maxEntries = 40
    public static let maxContent = 4096
    /// The entries' `module`: wisp's own lines, and the diagnostics Link SDK names so.
    public static let modules: [StaticString] = ["wisp", "DiagMqttConnection", "DiagMqttHeartbeat", "DiagAlinkUplink"]

    /// Starts a post; entries follow (`entry`), then `finish`.
    public static func start(id: UInt64, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":[")
    }

    /// One entry; `first` for the first of the post. `content` is written by `body` (the
    /// ring hands it over in pieces).
    public static func entry(first: Bool, time: UInt64, level: Severity, module: UInt8,
                             into json: inout JSONWriter, content: (inout JSONWriter) -> Void) {
        json.raw(first ? "{\"utcTime\":\"" : ",{\"utcTime\":\"")
        utcTime(time, into: &json)
        json.raw("\",\"logLevel\":\"")
        json.raw(level == .error ? "ERROR" : level == .warning ? "WARN" : level == .info ? "INFO" : "DEBUG")
        json.raw("\",\"module\":\"")
        json.raw(modules[Int(module) < modules.count ? Int(module) : 0])
        json.raw("\",\"code\":\"\",\"traceContext\":\"\",\"logContent\":")
        content(&json)
        json.byte(UInt8(ascii: "}"))
    }

    public static func finish(into json: inout JSONWriter) {
        json.raw("],\"method\":\"thing.log.post\"}")
    }

    /// The log switch's request at connect.
    public static func writeSwitchGet(id: UInt64, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":{\"configScope\":\"device\",\"getType\":\"content\"},\"method\":\"thing.config.log.get\"}")
    }

    /// The switch in a get reply (`data.content.mode`) or a push (`params.content.mode`):
    /// true on, false off, nil when the message says neither (a refused get, another shape).
    public static func switchMode(_ json: JSONReader) -> Bool? {
        guard case .object(let outer)? = json.member("data") ?? json.member("params"),
              case .object(let content)? = json.member("content", in: outer) else { return nil }
        switch json.member("mode", in: content) {
        case .number(0, 0)?: return false
        case .number(1, 0)?: return true
        case .string(let r)?: return json.equals(r, "1") ? true : json.equals(r, "0") ? false : nil
        default: return nil
        }
    }

    /// `2026-12-06T03:40:12.123+0000` for `ms` since 1970 (`CivilTime`).
    public static func utcTime(_ ms: UInt64, into json: inout JSONWriter) {
        let t = CivilTime(ms: ms)
        func two(_ v: Int64) { json.byte(UInt8(48 + v / 10 % 10)); json.byte(UInt8(48 + v % 10)) }
        two(t.year / 100)
        two(t.year % 100)
        json.byte(UInt8(ascii: "-"))
        two(t.month)
        json.byte(UInt8(ascii: "-"))
        two(t.day)
        json.byte(UInt8(ascii: "T"))
        two(t.hour)
        json.byte(UInt8(ascii: ":"))
        two(t.minute)
        json.byte(UInt8(ascii: ":"))
        two(t.second)
        json.byte(UInt8(ascii: "."))
        json.byte(UInt8(48 + t.milli / 100))
        two(t.milli % 100)
        json.raw("+0000")
    }
}

extension LogPost {
    /// Writes a log line's content (in pieces) escaped into `json`, leaving `reserve` bytes
    /// free: what does not fit is cut at a character boundary and marked with `…`.
    public struct Content {
        var boundary: Int
        public private(set) var cut = false
        let reserve: Int

        public init(_ json: JSONWriter, reserve: Int) {
            boundary = json.buffer.count
            self.reserve = reserve + 3  // the mark
        }

        public mutating func add<S: Sequence<UInt8>>(_ piece: S, into json: inout JSONWriter) {
            for b in piece where !cut {
                if b & 0xC0 != 0x80 { boundary = json.buffer.count }
                let size = b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") ? 2 : b < 0x20 ? 6 : 1
                if json.buffer.available - size < reserve {
                    cut = true
                    json.rollBack(to: boundary)
                    json.raw("…")
                    return
                }
                json.escaped(CollectionOfOne(b))
            }
        }
    }
}
