import GatehouseCore

extension ListenAddress {
    /// Parses a bind address: `host:port` or `[v6]:port`. The port is required and may be 0 (the kernel picks
    /// an ephemeral port, useful in tests). The host is an IPv4 literal, a bracketed IPv6 literal or a name;
    /// it is stored lower-cased and without brackets.
    static func parse(_ text: String) -> ListenAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":"), host.contains(":"), IPAddress(String(host)) != nil else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.isEmpty, host.utf8.allSatisfy({ HostName.isRegNameByte($0) }) else { return nil }
            let looksNumeric = host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
            if looksNumeric, IPAddress(String(host)) == nil { return nil }
        }
        guard portText.count <= 5, let port = Units.integer(String(portText)), port <= 65535 else { return nil }
        return ListenAddress(host: host.lowercased(), port: port)
    }
}
