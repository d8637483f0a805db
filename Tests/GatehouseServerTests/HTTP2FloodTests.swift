import Foundation
import GatehouseCore
import Testing

@testable import GatehouseServer

/// The known HTTP/2 floods (scripts/h2/flood.py, raw frames): rapid reset (CVE-2023-44487), CONTINUATION
/// flood, PING and SETTINGS floods without reading, empty DATA frames. Gatehouse (NIOHTTP2's defences) must
/// end the abusive connection, stay healthy, and keep serving other connections.
@Suite(.serialized) struct HTTP2FloodTests {
    func flood(_ attack: String, port: Int, count: Int? = nil) throws -> [String: Any] {
        // --settle 3: on a busy machine (the other test suites run in parallel) Gatehouse may still be working
        // through the flood when the last frame is sent.
        var args = [attack, "--host", "127.0.0.1", "--port", String(port), "--seconds", "10", "--settle", "3"]
        if let count { args += ["--count", String(count)] }
        let out = try PythonTools.run("scripts/h2/flood.py", args, timeout: 60)
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func floodsEndTheConnectionAndOthersAreServed() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], server: { $0.http2.cleartext = true })
        do {
            #expect(try flood("get", port: gh.port)["status"] as? Int == 200)
            for attack in ["rapid-reset", "continuation", "ping", "settings", "empty-data"] {
                let count: Int? = attack == "empty-data" ? 1_000_000 : (attack == "rapid-reset" ? 20_000 : 200_000)
                let result = try flood(attack, port: gh.port, count: count)
                print("flood \(attack): \(result)")
                let stopped = (result["goaway"] as? Bool == true) || (result["closed_by_peer"] as? Bool == true)
                #expect(stopped, "\(attack): \(result)")
                // Another connection is served right away, over HTTP/2 and HTTP/1.1.
                #expect(try flood("get", port: gh.port)["status"] as? Int == 200, "after \(attack)")
                let h1 = try runTool("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(gh.base)/after-\(attack)"])
                #expect(h1.output == "200", "after \(attack)")
            }
        } catch {
            Issue.record(error)
        }
        await gh.stop()
        await up.stop()
    }
}
