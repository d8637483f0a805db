import Foundation
import GatehouseAuth
import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseServer

/// WebSockets through Gatehouse with a real client and server (Python `websockets`, scripts/ws/ws_tool.py):
/// the upgrade is authenticated and authorised like any request, identity headers reach the upstream's
/// handshake, then large and fragmented messages are piped both ways.
@Suite(.serialized) struct WebSocketTests {
    func client(_ url: String, headers: [String] = []) throws -> [String: Any] {
        var args = ["client", "--url", url, "--timeout", "20"]
        for h in headers { args += ["--header", h] }
        let out = try PythonTools.run("scripts/ws/ws_tool.py", args, timeout: 60)
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func upgradesAreAuthenticatedThenTunnelled() async throws {
        let server = try PythonService("scripts/ws/ws_tool.py", arguments: ["serve"])
        defer { server.stop() }
        let wsPort = try #require(server.json["port"] as? Int)
        let wsTarget = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: wsPort)
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#)
        let alice = Minter(kid: "k1", issuer: keys.issuer)
        keys.setKeys(Minter.jwks([alice]))
        let up = try await Upstream()
        let gh = try await Harness.start(
            routes: [
                RouteConfig(id: "ws", pathPrefix: "/ws", upstream: wsTarget, auth: .jwt, allow: AllowRules(anyGroup: ["staff"]), websocket: true),
                RouteConfig(id: "open", pathPrefix: "/open", upstream: wsTarget, auth: .none, websocket: true),
                RouteConfig(id: "plain", pathPrefix: "/plain", upstream: wsTarget, auth: .none),
                RouteConfig(id: "reject", pathPrefix: "/reject", upstream: wsTarget, auth: .none, websocket: true),
            ],
            providers: [ProviderConfig(id: "corp", issuer: keys.issuer, audiences: ["api"])])
        let base = "ws://127.0.0.1:\(gh.port)"
        do {
            // Authenticated upgrade: identity headers in the upstream's handshake, spoofed ones gone, token gone.
            let ok = try client(
                "\(base)/ws/chat?room=1", headers: ["Authorization: Bearer \(alice.token())", "X-Forwarded-User: mallory"])
            #expect(ok["ok"] as? Bool == true, "\(ok)")
            #expect(ok["echoes"] as? Int == 3)
            #expect(ok["path"] as? String == "/ws/chat?room=1")
            let headers = (ok["upgrade_headers"] as? [[String]]) ?? []
            func values(_ name: String) -> [String] { headers.filter { $0[0].lowercased() == name }.map { $0[1] } }
            #expect(values("x-forwarded-user") == ["alice"])
            #expect(values("x-forwarded-groups") == ["staff"])
            #expect(values("authorization").isEmpty)
            #expect(values("upgrade") == ["websocket"])

            // No token: 401, no tunnel. A token outside the group: 403.
            let anonymous = try client("\(base)/ws/chat")
            #expect(anonymous["ok"] as? Bool == false)
            #expect(anonymous["status"] as? Int == 401)
            let bob = try client("\(base)/ws/chat", headers: ["Authorization: Bearer \(alice.token(sub: "bob", groups: ["guests"]))"])
            #expect(bob["status"] as? Int == 403)
            // A route without websocket: true refuses the upgrade.
            let plain = try client("\(base)/plain/x")
            #expect(plain["status"] as? Int == 400)
            #expect((plain["body"] as? String ?? "").contains("not enabled"))
            // An open WebSocket route works without credentials.
            #expect(try client("\(base)/open/x")["ok"] as? Bool == true)
            // An upstream that refuses the upgrade (403, no 101): that answer, no tunnel, connection closed.
            let raw = try RawClient(port: gh.port, timeoutSeconds: 10)
            raw.send(
                "GET /reject/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            let (refused, closed) = raw.readToClose()
            #expect(refused.hasPrefix("HTTP/1.1 403"), "\(refused)")
            #expect(refused.contains("refused by the upstream"))
            #expect(closed)
            // The access log records the tunnels as 101 with their byte counts.
            let tunnels = gh.log.accessLines().filter { ($0["status"] as? String) == "101" || ($0["status"] as? Int) == 101 }
            #expect(tunnels.count == 2)
        } catch {
            Issue.record(error)
        }
        await gh.stop()
        await up.stop()
        await keys.stop()
    }

    @Test func tunnelClosesWhenTheTokenExpires() async throws {
        let server = try PythonService("scripts/ws/ws_tool.py", arguments: ["serve"])
        defer { server.stop() }
        let wsPort = try #require(server.json["port"] as? Int)
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#)
        let alice = Minter(kid: "k1", issuer: keys.issuer)
        keys.setKeys(Minter.jwks([alice]))
        let gh = try await Harness.start(
            routes: [
                RouteConfig(
                    id: "ws", pathPrefix: "/ws", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: wsPort),
                    auth: .jwt, websocket: true)
            ],
            providers: [ProviderConfig(id: "corp", issuer: keys.issuer, audiences: ["api"], clockSkew: .seconds(0))])
        // A raw client: the handshake with a token valid for 2 more seconds, then silence; Gatehouse must close
        // the tunnel when the token expires (the idle timeout is 75 s, so only the expiry can close it).
        let raw = try RawClient(port: gh.port, timeoutSeconds: 15)
        let started = Date()
        raw.send(
            "GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer \(alice.token(ttl: 2))\r\n\r\n")
        let (text, closed) = raw.readToClose()
        #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(closed)
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.5 && elapsed < 10, "closed after \(elapsed) s")
        // The access log line is written as the connection closes: wait for it (bounded).
        let deadline = Date().addingTimeInterval(5)
        while !gh.log.accessLines().contains(where: { ($0["error"] as? String) == "tunnel_identity_expired" }), Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(gh.log.accessLines().contains { ($0["error"] as? String) == "tunnel_identity_expired" }, "\(gh.log.accessLines())")
        await gh.stop()
        await keys.stop()
    }

    /// A tunnel opened with a browser session closes when that session ends.
    @Test func tunnelClosesWhenTheSessionEnds() async throws {
        let server = try PythonService("scripts/ws/ws_tool.py", arguments: ["serve"])
        defer { server.stop() }
        let wsPort = try #require(server.json["port"] as? Int)
        let keys = try await KeyServer(jwks: #"{"keys":[]}"#)
        keys.setKeys(Minter.jwks([Minter(kid: "k1", issuer: keys.issuer)]))
        let secret = [UInt8](repeating: 9, count: 32)
        let gh = try await Harness.start(
            routes: [
                RouteConfig(
                    id: "ws", pathPrefix: "/ws", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: wsPort),
                    auth: .session, websocket: true)
            ],
            providers: [ProviderConfig(id: "corp", issuer: keys.issuer, clientID: "gatehouse")],
            session: SessionConfig(secrets: [secret], secure: false))
        let now = Int64(Date().timeIntervalSince1970)
        let record = SessionRecord(
            providerID: "corp", sessionID: "ws", claims: ["sub": .string("carol")], createdAt: now - 60, expiresAt: now + 2,
            accessTokenExpiresAt: now + 3600)
        let sealed = try #require(CookieSealer(secrets: [secret]).seal(record.encoded(), purpose: .session))
        let raw = try RawClient(port: gh.port, timeoutSeconds: 15)
        let started = Date()
        raw.send(
            "GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: _gatehouse=\(sealed)\r\n\r\n")
        let (text, closed) = raw.readToClose()
        #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(text)")
        #expect(text.contains("[\"X-Forwarded-User\", \"carol\"]"))  // the upstream's first message: its handshake headers
        #expect(closed)
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.5 && elapsed < 10, "closed after \(elapsed) s")
        await gh.stop()
        await keys.stop()
    }
}
