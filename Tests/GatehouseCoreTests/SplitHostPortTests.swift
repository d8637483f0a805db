import Testing

@testable import GatehouseCore

/// `splitHostPort` reads every request's `Host`; it became a single pass over the bytes. The table pins its
/// answers, and a differential run holds it to the String-based version it replaced on generated authorities.
@Suite struct SplitHostPortTests {
    @Test func table() {
        let cases: [(String, String?, Int?)] = [
            ("example.com", "example.com", nil), ("Example.COM:8080", "example.com", 8080),
            ("127.0.0.1:80", "127.0.0.1", 80), ("a:1", "a", 1), ("a:65535", "a", 65535), ("a:00080", "a", 80),
            ("[::1]", "::1", nil), ("[::1]:443", "::1", 443), ("[FE80::1]", "fe80::1", nil),
        ]
        for (input, host, port) in cases {
            let result = splitHostPort(Substring(input))
            #expect(result?.0 == host, "\(input)")
            #expect(result?.1 == port, "\(input)")
        }
        for bad in [
            "", ":80", "a:", "a:0", "a:65536", "a:000080", "a:b", "a:b:80", "a::80", "a b", "a/b", "a@b", "é.com",
            "a:8\u{301}0", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]", "[]", "[::1]:0",
        ] {
            #expect(splitHostPort(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func agreesWithTheStringVersionOnGeneratedAuthorities() {
        let alphabet: [String] = [
            "a", "Z", "0", "9", ".", "-", "_", "~", ":", "[", "]", "1", "8", " ", "é", "\u{301}", "%",
        ]
        var rng = SplitMix(seed: 0x5EED)
        for _ in 0..<20_000 {
            let length = Int(rng.next() % 9)
            var text = ""
            for _ in 0..<length { text += alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let new = splitHostPort(Substring(text))
            let old = referenceSplitHostPort(Substring(text))
            #expect(new?.0 == old?.0 && new?.1 == old?.1, "\(text.debugDescription)")
        }
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The implementation before the byte loop (commit 8c1d817), kept as the reference.
private func referenceSplitHostPort(_ authority: Substring) -> (String, Int?)? {
    var host: Substring
    var portText: Substring?
    if authority.hasPrefix("[") {
        guard let close = authority.firstIndex(of: "]") else { return nil }
        host = authority[authority.index(after: authority.startIndex)..<close]
        let after = authority[authority.index(after: close)...]
        if !after.isEmpty {
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        }
        guard IPAddress(String(host)) != nil, host.contains(":") else { return nil }
    } else {
        if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ HostName.isRegNameByte($0) }) else { return nil }
    }
    guard !host.isEmpty else { return nil }
    var port: Int?
    if let portText {
        guard !portText.isEmpty, portText.count <= 5, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let p = Int(portText), p > 0, p < 65536
        else { return nil }
        port = p
    }
    return (String(host).lowercased(), port)
}
