import Testing

@testable import GatehouseCore

@Suite struct HeaderRulesTests {
    let rules = HeaderRules(
        identityHeaders: GatewayConfig.defaultIdentityHeaders, trustedProxies: [CIDR.parse("10.0.0.0/8")!])

    func forward(_ headers: [(String, String)], peer: String = "192.0.2.7", preserveHost: Bool = false)
        -> [(String, String)]
    {
        let ip = IPAddress(peer)
        return rules.upstreamRequestHeaders(
            from: headers.map { (name: $0.0, value: $0.1) },
            context: .init(
                peer: ip, peerTrusted: rules.isTrusted(ip), scheme: "http", rawHost: "app.example.com",
                upstreamHost: "127.0.0.1:3000", preserveHost: preserveHost, requestID: "rid"))
    }

    func names(_ h: [(String, String)]) -> [String] { h.map { $0.0.lowercased() } }
    func value(_ h: [(String, String)], _ name: String) -> String? { h.first { $0.0.lowercased() == name }?.1 }

    @Test(arguments: [
        "X-Forwarded-User", "x-forwarded-user", "X_Forwarded_User", "x.forwarded.user", "X-FORWARDED-USER",
        "X-Forwarded_Email", "x_forwarded_groups", "X-Forwarded-Preferred-Username", "X-Auth-Request-User",
        "x_auth_request_email", "X-Auth-Request-Access-Token",
    ])
    func identityAliasesAreStripped(name: String) {
        for peer in ["192.0.2.7", "10.1.2.3"] {
            let out = forward([(name, "mallory"), ("Accept", "*/*")], peer: peer)
            #expect(!out.contains { $0.1 == "mallory" }, "\(name) from \(peer) survived")
            #expect(value(out, "accept") == "*/*")
        }
    }

    @Test func untrustedForwardedHeadersAreReplaced() {
        let out = forward([
            ("X-Forwarded-For", "1.2.3.4"), ("X_Forwarded_For", "5.6.7.8"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.com"), ("Forwarded", "for=1.2.3.4"), ("X-Real-IP", "1.2.3.4"),
            ("X-Forwarded-Prefix", "/evil"),
        ])
        #expect(value(out, "x-forwarded-for") == "192.0.2.7")
        #expect(value(out, "x-forwarded-proto") == "http")
        #expect(value(out, "x-forwarded-host") == "app.example.com")
        #expect(value(out, "forwarded") == nil)
        #expect(value(out, "x-real-ip") == nil)
        #expect(value(out, "x-forwarded-prefix") == nil)
        #expect(out.filter { $0.0.lowercased() == "x-forwarded-for" }.count == 1)
    }

    @Test func trustedForwardedHeadersAreKeptAndAppended() {
        let out = forward(
            [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "edge.example.com"),
             ("X_Forwarded_For", "6.6.6.6")], peer: "10.0.0.5")
        #expect(value(out, "x-forwarded-for") == "1.2.3.4, 10.0.0.5")
        #expect(value(out, "x-forwarded-proto") == "https")
        #expect(value(out, "x-forwarded-host") == "edge.example.com")
        #expect(!out.contains { $0.1.contains("6.6.6.6") })
    }

    @Test func hopByHopAndNominatedHeadersAreRemoved() {
        let out = forward([
            ("Connection", "keep-alive, X-Secret, x-forwarded-for, host, content-length"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Trailer", "x"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"),
            ("Proxy-Connection", "keep-alive"), ("X-Secret", "s"), ("Transfer_Encoding", "chunked"),
            ("Content-Length", "5"), ("Expect", "100-continue"),
        ])
        let n = names(out)
        for gone in ["connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection",
            "x-secret", "transfer_encoding", "expect"]
        {
            #expect(!n.contains(gone), "\(gone) was forwarded")
        }
        // Gatehouse's own headers survive a Connection header naming them; framing is untouched.
        #expect(value(out, "x-forwarded-for") == "192.0.2.7")
        #expect(value(out, "host") == "127.0.0.1:3000")
        #expect(value(out, "content-length") == "5")
    }

    @Test func aliasSpellingsOfSensitiveHeadersAreDropped() {
        let out = forward([
            ("Content_Length", "5"), ("Content.Type", "text/evil"), ("authorization", "Bearer t"), ("X_Request_Id", "r"),
            ("X_Custom_Header", "kept"),
        ])
        #expect(names(out) .filter { $0.contains("_") || $0.contains(".") } == ["x_custom_header"])
        #expect(value(out, "authorization") == "Bearer t")
    }

    @Test func hostIsUpstreamsUnlessPreserved() {
        #expect(value(forward([("Host", "app.example.com")]), "host") == "127.0.0.1:3000")
        #expect(value(forward([("Host", "app.example.com")], preserveHost: true), "host") == "app.example.com")
        #expect(names(forward([("Host", "app.example.com")])).filter { $0 == "host" }.count == 1)
    }

    @Test func requestIDIsGatehouses() {
        let out = forward([("X-Request-Id", "client"), ("x_request_id", "alias")])
        #expect(value(out, "x-request-id") == "rid")
        #expect(out.filter { HeaderRules.normalise($0.0) == "x-request-id" }.count == 1)
        #expect(HeaderRules.acceptableRequestID("abc-123.x:y_z"))
        #expect(!HeaderRules.acceptableRequestID("a b"))
        #expect(!HeaderRules.acceptableRequestID(String(repeating: "a", count: 129)))
    }

    @Test func responseHopByHop() {
        let out = HeaderRules.clientResponseHeaders(from: [
            (name: "Connection", value: "close, X-Internal"), (name: "X-Internal", value: "1"),
            (name: "Transfer-Encoding", value: "chunked"), (name: "Content-Type", value: "text/plain"),
            (name: "Keep-Alive", value: "timeout=5"), (name: "Set-Cookie", value: "a=b"),
        ])
        #expect(out.map { $0.0 } == ["Content-Type", "Set-Cookie"])
    }

    @Test func cidr() {
        let c = CIDR.parse("10.0.0.0/8")!
        #expect(c.contains(IPAddress("10.255.1.1")!))
        #expect(!c.contains(IPAddress("11.0.0.1")!))
        #expect(CIDR.parse("192.168.1.7")!.contains(IPAddress("192.168.1.7")!))
        #expect(!CIDR.parse("192.168.1.7")!.contains(IPAddress("192.168.1.8")!))
        let v6 = CIDR.parse("fd00::/8")!
        #expect(v6.contains(IPAddress("fd12:3456::1")!))
        #expect(!v6.contains(IPAddress("fe80::1")!))
        #expect(CIDR.parse("::1")!.contains(IPAddress("::1")!))
        #expect(CIDR.parse("127.0.0.0/8")!.contains(IPAddress("::ffff:127.0.0.1")!))
        #expect(CIDR.parse("10.0.0.0/33") == nil)
        #expect(CIDR.parse("10.0.0/8") == nil)
        #expect(CIDR.parse("010.0.0.1") == nil)
        #expect(CIDR.parse("::1::2") == nil)
    }
}
