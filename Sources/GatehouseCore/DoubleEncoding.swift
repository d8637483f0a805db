/// Paths that mean something else to a backend that percent-decodes twice (or reads `\\` as `/`).
///
/// RFC 3986 says `%252e` is the three characters `%2e`, and Gatehouse forwards it so. But legacy applications
/// behind Gatehouse often decode twice, and then `/public/%252e%252e/admin` is `/public/../admin`, which they
/// serve as `/admin` while Gatehouse authorised `/public`. A canonical path is suspect when
/// 1. an encoded `%` (`%25`) is followed by the hex code of `.`, `/`, `\\` or `%` itself (`%252e`, `%252F`,
///    `%255c`, `%2525`), or
/// 2. decoding it a second time (after the first decoding every backend does) gives more dot segments or a
///    different first segment than the first decoding did (`\\` read as `/`, `?` and `#` as ends of the path).
/// Only paths with `%25` can be suspect (the canonical form has no other escape that a second decoding
/// changes), so ordinary paths cost one byte scan.
public enum DoubleEncoding {
    public static func changesPath(canonical path: String) -> Bool {
        var path = path
        return path.withUTF8 { raw in
            guard containsEncodedPercent(raw) else { return false }
            // Rule 1: %25 followed by the code of a structural character.
            var i = 0
            while i + 4 < raw.count {
                if raw[i] == UInt8(ascii: "%"), raw[i + 1] == UInt8(ascii: "2"), raw[i + 2] == UInt8(ascii: "5"),
                    let h1 = CanonicalTarget.hexValue(raw[i + 3]), let h2 = CanonicalTarget.hexValue(raw[i + 4])
                {
                    switch h1 << 4 | h2 {
                    case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "%"): return true
                    default: break
                    }
                }
                i += 1
            }
            // Rule 2: what a second decoding does to the structure.
            let once = decode(Array(raw))
            let twice = decode(once)
            let first = shape(once)
            let second = shape(twice)
            return second.dotSegments > first.dotSegments || second.firstSegment != first.firstSegment
        }
    }

    static func containsEncodedPercent(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        guard raw.count >= 3 else { return false }
        for i in 0..<(raw.count - 2)
        where raw[i] == UInt8(ascii: "%") && raw[i + 1] == UInt8(ascii: "2") && raw[i + 2] == UInt8(ascii: "5") {
            return true
        }
        return false
    }

    /// One percent-decoding pass; an invalid escape stays as it is (as lenient decoders leave it).
    static func decode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let h1 = CanonicalTarget.hexValue(bytes[i + 1]),
                let h2 = CanonicalTarget.hexValue(bytes[i + 2])
            {
                out.append(h1 << 4 | h2)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// The first segment and the number of dot segments (`.`, `..`, also with `;` parameters) of a decoded path,
    /// `\\` read as `/` and the path ending at `?` or `#`.
    static func shape(_ bytes: [UInt8]) -> (firstSegment: [UInt8], dotSegments: Int) {
        var segments: [[UInt8]] = [[]]
        for b in bytes {
            if b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { break }
            if b == UInt8(ascii: "/") || b == UInt8(ascii: "\\") {
                segments.append([])
            } else {
                segments[segments.count - 1].append(b)
            }
        }
        // A path starts with "/": the element before it is empty.
        let named = segments.dropFirst()
        var dots = 0
        for segment in named {
            let name = segment.prefix { $0 != UInt8(ascii: ";") }
            if name.elementsEqual([UInt8(ascii: ".")]) || name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                dots += 1
            }
        }
        return (named.first ?? [], dots)
    }
}
