import GatehouseCore

/// Pure parsers for the numbers of the configuration language: durations, byte sizes and plain counts.
///
/// Every parser takes the whole text and returns nil unless all of it is understood: no signs, no spaces, no
/// fractions, no overflow. Range checks (a timeout must be positive, a header limit within bounds) belong to
/// the caller, which knows what the number means.
enum Units {
    /// Duration units, largest first; a value lists each unit at most once, in this order (`1h30m`, `1s500ms`).
    private static let durationUnits: [(name: Substring, nanoseconds: Int64)] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ]

    /// Size units: binary (KiB = 1024) and decimal (KB = 1000). A bare number is bytes.
    private static let sizeUnits: [Substring: Int64] = [
        "": 1, "B": 1,
        "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
        "KB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000,
    ]

    /// Parses `250ms`, `30s`, `5m`, `12h` or a combination such as `1h30m`. `0s` parses (to zero).
    static func duration(_ text: String) -> GatehouseCore.Duration? {
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        var nextUnit = durationUnits.startIndex
        while !rest.isEmpty {
            let digits = rest.prefix(while: isDigit)
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isASCII && $0.isLetter })
            rest = rest.dropFirst(unit.count)
            guard let number = decimal(digits),
                let index = durationUnits[nextUnit...].firstIndex(where: { $0.name == unit })
            else { return nil }
            nextUnit = index + 1
            let (scaled, overflow) = number.multipliedReportingOverflow(by: durationUnits[index].nanoseconds)
            guard !overflow else { return nil }
            let (sum, overflow2) = total.addingReportingOverflow(scaled)
            guard !overflow2 else { return nil }
            total = sum
        }
        return GatehouseCore.Duration(nanoseconds: total)
    }

    /// Parses a byte size: `4096`, `512B`, `32KiB`, `16MiB`, `1GiB`, or decimal `10KB`/`10MB`/`1GB`.
    static func size(_ text: String) -> Int64? {
        let all = Substring(text)
        let digits = all.prefix(while: isDigit)
        guard let number = decimal(digits), let multiplier = sizeUnits[all.dropFirst(digits.count)] else {
            return nil
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// Parses a non-negative decimal integer made of ASCII digits only (no sign, no spaces).
    static func integer(_ text: String) -> Int? {
        decimal(Substring(text)).flatMap { Int(exactly: $0) }
    }

    private static func decimal(_ digits: Substring) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy(isDigit) else { return nil }
        return Int64(digits)
    }

    private static func isDigit(_ c: Character) -> Bool {
        c >= "0" && c <= "9" && c.isASCII
    }
}
