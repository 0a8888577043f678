/// Wall-clock milliseconds since 1970 as a UTC date and time (the proleptic Gregorian
/// calendar from days since 1970, Howard Hinnant's algorithm; no Foundation). The log
/// posts' `utcTime` and `wisp status`'s times both read it.
public struct CivilTime {
    public let year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, milli: Int64

    public init(ms: UInt64) {
        let seconds = Int64(ms / 1000)
        let z = seconds / 86_400 + 719_468
        let era = z / 146_097, doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let s = seconds % 86_400
        hour = s / 3600
        minute = s / 60 % 60
        second = s % 60
        milli = Int64(ms % 1000)
    }
}
