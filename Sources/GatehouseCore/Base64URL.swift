/// Strict base64url without padding (RFC 7515 §2, RFC 4648 §5): only `A-Z a-z 0-9 - _`, no `=`, no
/// whitespace, a length that is not 1 mod 4, and zero unused bits in the last character (so each byte
/// string has exactly one encoding and a token cannot be altered without changing its signature input).
public enum Base64URL {
    static let decodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        return t
    }()

    static let encodeTable: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Decodes any byte collection: contiguous storage (String.UTF8View, Substring.UTF8View, arrays) goes to the
    /// concrete decoder in one call. (A generic loop is not specialised across the module boundary: it cost
    /// several microseconds per token in the cache-miss profile, a witness-table call per byte.)
    public static func decode(_ input: some Collection<UInt8>) -> [UInt8]? {
        if let decoded = input.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return decoded }
        return Array(input).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    public static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = input.count
        guard count % 4 != 1 else { return nil }
        let table = decodeTable
        return table.withUnsafeBufferPointer { table in
            var out: [UInt8] = []
            out.reserveCapacity(count * 3 / 4)
            var acc: UInt32 = 0
            var bits = 0
            for c in input {
                let v = table[Int(c)]
                guard v != 0xFF else { return nil }
                acc = acc << 6 | UInt32(v)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                    acc &= (1 << UInt32(bits)) - 1
                }
            }
            guard acc == 0 else { return nil }  // non-canonical: unused bits set
            return out
        }
    }

    public static func encode(_ input: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((input.count * 4 + 2) / 3)
        var acc: UInt32 = 0
        var bits = 0
        for b in input {
            acc = acc << 8 | UInt32(b)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(encodeTable[Int((acc >> UInt32(bits)) & 0x3F)])
            }
        }
        if bits > 0 { out.append(encodeTable[Int((acc << UInt32(6 - bits)) & 0x3F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
