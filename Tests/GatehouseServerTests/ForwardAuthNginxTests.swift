import Foundation
import GatehouseConfig
import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseServer

/// The shipped nginx `auth_request` example (Config/nginx/auth_request.conf.template with
/// Config/examples/forward-auth.yaml) run for real: nginx in front of an application, Gatehouse as its login
/// and forward-auth service, Canaille as the provider. A browser-like client logs in through nginx.
@Suite(.serialized) struct ForwardAuthNginxTests {
    static let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }

    final class Nginx {
        let process = Process()
        let dir: URL
        let port: Int

        init(gatehouse: Int, app: Int) throws {
            guard let binary = ForwardAuthNginxTests.nginx else { throw TestFailure("nginx is not installed (./scripts/test.sh installs it)") }
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-nginx-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            // nginx cannot bind port 0 and report it: take a port the kernel hands out and released (a short window
            // another process could take it in; the start is retried).
            port = try closedPort()
            let template = try String(
                contentsOf: PythonTools.repoRoot.appendingPathComponent("Config/nginx/auth_request.conf.template"), encoding: .utf8)
            let site = template.replacingOccurrences(of: "__GATEHOUSE__", with: "127.0.0.1:\(gatehouse)")
                .replacingOccurrences(of: "__APP__", with: "127.0.0.1:\(app)")
                .replacingOccurrences(of: "__LISTEN__", with: "127.0.0.1:\(port)")
            try site.write(to: dir.appendingPathComponent("site.conf"), atomically: true, encoding: .utf8)
            let d = dir.path
            let main = """
                worker_processes 1;
                pid \(d)/nginx.pid;
                error_log \(d)/error.log info;
                events { worker_connections 256; }
                http {
                  access_log \(d)/access.log;
                  client_body_temp_path \(d)/body; proxy_temp_path \(d)/proxy; fastcgi_temp_path \(d)/fastcgi;
                  uwsgi_temp_path \(d)/uwsgi; scgi_temp_path \(d)/scgi;
                  include \(d)/site.conf;
                }
                """
            try main.write(to: dir.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["-p", d, "-c", "\(d)/nginx.conf", "-e", "\(d)/error.log", "-g", "daemon off;"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// Waits (bounded) until nginx answers on its port, or fails with its error log.
        func waitReady(_ browser: CookieBrowser) async throws {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if !process.isRunning { break }
                if (try? await browser.get("http://127.0.0.1:\(port)/healthz", store: false)) != nil { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            let log = (try? String(contentsOf: dir.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
            throw TestFailure("nginx did not start: \(log.suffix(1500))")
        }

        func stop() {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    @Test func nginxAuthRequestWithGatehouse() async throws {
        let idp = try PythonService("scripts/oidc/canaille_provider.py", arguments: ["serve"])
        defer { idp.stop() }
        guard let issuer = idp.json["issuer"] as? String, let secret = idp.json["client_secret"] as? String else {
            throw TestFailure("unexpected provider output")
        }
        let up = try await Upstream()
        var config = try ConfigLoader.load(
            path: PythonTools.repoRoot.appendingPathComponent("Config/examples/forward-auth.yaml").path,
            environment: [
                "GATEHOUSE_LISTEN": "127.0.0.1:0", "GATEHOUSE_ADMIN_LISTEN": "127.0.0.1:0", "OIDC_ISSUER": issuer,
                "OIDC_CLIENT_ID": "gatehouse", "GATEHOUSE_CLIENT_SECRET": secret,
                "GATEHOUSE_COOKIE_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "APP_UPSTREAM": "http://127.0.0.1:\(up.port)",
            ])
        // Canaille releases group membership only with its `groups` scope (the example asks for the usual three).
        config.providers[0].scopes.append("groups")
        #expect(GatehouseServer.unsupported(in: config).isEmpty)
        let gh = try await Harness.start(config: config)
        let browser = CookieBrowser()
        var nginx: Nginx?
        func cleanup() async {
            nginx?.stop()
            await browser.shutdown()
            await gh.stop()
            await up.stop()
        }
        do {
            // nginx's port is only known once it runs; retry the start if another process took the port.
            for attempt in 1...3 {
                let n = try Nginx(gatehouse: gh.port, app: up.port)
                do {
                    try await n.waitReady(browser)
                    nginx = n
                    break
                } catch {
                    n.stop()
                    if attempt == 3 { throw error }
                }
            }
            guard let nginx else { throw TestFailure("nginx did not start") }
            let base = "http://127.0.0.1:\(nginx.port)"
            let registered = try idp.command(["cmd": "register_redirect_uri", "uri": "\(base)/oauth2/callback"])
            #expect(registered["ok"] as? Bool == true)

            // Not signed in: nginx turns Gatehouse's 401 into the login redirect.
            let first = try await browser.get("\(base)/app/page")
            #expect(first.status == 302)
            #expect(first.location == "/oauth2/start?rd=/app/page")
            let start = try await browser.get("\(base)/oauth2/start?rd=/app/page")
            #expect(start.status == 302)
            let answer = try idp.command(["cmd": "login", "user": "alice", "authorize_url": try #require(start.location)])
            let callbackURL = try #require(answer["location"] as? String)
            #expect(callbackURL.hasPrefix("\(base)/oauth2/callback?"))  // through nginx, on nginx's host and port
            let callback = try await browser.get(callbackURL)
            #expect(callback.status == 302, "\(callback.body)")
            #expect(callback.location == "/app/page")

            // Signed in: nginx asks /oauth2/auth and hands the identity to the application.
            let page = try await browser.get("\(base)/app/page", headers: [("X-Forwarded-User", "mallory"), ("Accept", "text/html")])
            #expect(page.status == 200, "\(page.body)")
            let echo = try Echo.decode(page.body)
            #expect(echo.values("x-forwarded-user") == ["alice"])
            #expect(echo.values("x-forwarded-email") == ["alice@example.com"])
            #expect(try await browser.get("\(base)/admin/panel").status == 200)  // alice is in admins
            // The check itself is internal to nginx.
            #expect(try await browser.get("\(base)/oauth2/auth").status == 404)

            // bob is signed in but not an admin: nginx shows the 403 of the allow rules.
            browser.jar = [:]
            let bobStart = try await browser.get("\(base)/oauth2/start?rd=/admin/panel")
            let bobAnswer = try idp.command(["cmd": "login", "user": "bob", "authorize_url": try #require(bobStart.location)])
            #expect(try await browser.get(try #require(bobAnswer["location"] as? String)).status == 302)
            #expect(try await browser.get("\(base)/admin/panel").status == 403)
            #expect(try await browser.get("\(base)/app/x").status == 200)
        } catch {
            await cleanup()
            throw error
        }
        await cleanup()
    }
}
