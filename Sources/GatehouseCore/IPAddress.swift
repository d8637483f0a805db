/// An IPv4 or IPv6 address as raw bytes (4 or 16). IPv4-mapped IPv6 addresses are treated as IPv4.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            self.bytes = Array(bytes[12..<16])
        } else {
            self.bytes = bytes
        }
    }

    public init?(_ text: String) {
        if let v4 = IPAddress.parseV4(Substring(text)) {
            self.init(bytes: v4)
        } else if let v6 = IPAddress.parseV6(Substring(text)) {
            self.init(bytes: v6)
        } else {
            return nil
        }
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                !(p.count > 1 && p.hasPrefix("0")), let v = UInt8(p)
            else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseV6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var v4Tail: [UInt8] = []
        var halves: [String] = []
        if let r = text.firstRange(of: "::") {
            let rest = text[r.upperBound...]
            guard rest.firstRange(of: "::") == nil else { return nil }
            halves = [String(text[..<r.lowerBound]), String(rest)]
        } else {
            halves = [String(text)]
        }
        func groups(_ s: String, allowV4: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if allowV4, i == parts.count - 1, p.contains(".") {
                    guard let v4 = parseV4(p) else { return nil }
                    v4Tail = v4
                    continue
                }
                guard !p.isEmpty, p.count <= 4, let v = UInt16(p, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        if halves.count == 2 {
            guard let h = groups(halves[0], allowV4: false), let t = groups(halves[1], allowV4: true) else {
                return nil
            }
            head = h
            tail = t
            let used = head.count + tail.count + (v4Tail.isEmpty ? 0 : 2)
            guard used <= 7 else { return nil }
            head += [UInt16](repeating: 0, count: 8 - used)
        } else {
            guard let h = groups(halves[0], allowV4: true) else { return nil }
            head = h
            guard head.count + (v4Tail.isEmpty ? 0 : 2) == 8 else { return nil }
        }
        var out: [UInt8] = []
        for g in head + tail {
            out.append(UInt8(g >> 8))
            out.append(UInt8(g & 0xff))
        }
        out += v4Tail
        return out.count == 16 ? out : nil
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }
}

/// A CIDR block such as `10.0.0.0/8` or `fd00::/8`; a bare address is a /32 or /128.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    public static func parse(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let maxBits = address.bytes.count * 8
        var length = maxBits
        if parts.count == 2 {
            guard let l = Int(parts[1]), l >= 0, l <= maxBits, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            else { return nil }
            length = l
        }
        return CIDR(network: address, prefixLength: length)
    }

    init(network: IPAddress, prefixLength: Int) {
        self.network = network
        self.prefixLength = prefixLength
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var bits = prefixLength
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if address.bytes[i] & mask != network.bytes[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
