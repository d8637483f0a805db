import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import GatehouseServer

/// A throw-away PKI made with openssl: a CA, server certificates for 127.0.0.1/localhost, a client certificate.
struct TestPKI {
    let dir: URL
    var ca: String { dir.appendingPathComponent("ca.pem").path }
    var cert: String { dir.appendingPathComponent("server.pem").path }
    var key: String { dir.appendingPathComponent("server.key").path }
    var clientCert: String { dir.appendingPathComponent("client.pem").path }
    var clientKey: String { dir.appendingPathComponent("client.key").path }
    var otherCA: String { dir.appendingPathComponent("other-ca.pem").path }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
            to: dir.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=Gatehouse Test CA"])
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "other-ca.key",
            "-out", "other-ca.pem", "-days", "2", "-subj", "/CN=Another CA"])
        try issue(name: "server", cn: "127.0.0.1")
        try issue(name: "client", cn: "gatehouse-client")
    }

    /// Issues `<name>.pem`/`<name>.key` signed by the CA (a new serial each time).
    func issue(name: String, cn: String) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key",
            "-out", "\(name).csr", "-subj", "/CN=\(cn)"])
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "\(name).pem", "-days", "2", "-extfile", "san.ext"])
    }

    @discardableResult
    func openssl(_ args: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if input == nil, p.terminationStatus != 0, args.first != "s_client" {
            throw TestFailure("openssl \(args.first ?? "") failed: \(String(decoding: data, as: UTF8.self))")
        }
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}

/// Runs a command (curl, openssl) to completion; returns its status and standard output.
func runTool(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite(.serialized) struct TLSListenerTests {
    static func client(trusting ca: String, http1Only: Bool = false) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(30)))
        if http1Only { configuration.httpVersion = .http1Only }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func start(_ pki: TestPKI, up: Upstream, minVersion: TLSListenerConfig.Version = .v1_2, cleartextH2: Bool = false) async throws -> Harness {
        try await Harness.start(
            routes: [route("app", upstream: up.target)],
            server: {
                $0.tls = TLSListenerConfig(
                    listen: [ListenAddress(host: "127.0.0.1", port: 0)], certificateFile: pki.cert, privateKeyFile: pki.key,
                    minVersion: minVersion)
                $0.http2.cleartext = cleartextH2
            })
    }

    @Test func httpsWithHTTP2AndHTTP1ByALPN() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let up = try await Upstream()
        let gh = try await Self.start(pki, up: up)
        let h2 = try Self.client(trusting: pki.ca)
        let h1 = try Self.client(trusting: pki.ca, http1Only: true)
        do {
            let port = try #require(gh.server.tlsAddresses.first?.port)
            let url = "https://127.0.0.1:\(port)/page?q=1"
            let r2 = try await h2.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            #expect(r2.status == .ok)
            #expect(r2.version == .http2)
            let echo2 = try Echo.decode(String(buffer: try await r2.body.collect(upTo: 1 << 20)))
            #expect(echo2.uri == "/page?q=1")
            #expect(echo2.values("x-forwarded-proto") == ["https"])
            let r1 = try await h1.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            #expect(r1.status == .ok)
            #expect(r1.version == .http1_1)

            // curl over both protocols.
            let curl2 = try runTool("/usr/bin/curl", ["-sS", "--http2", "--cacert", pki.ca, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
            #expect(curl2.output == "2 200")
            let curl1 = try runTool("/usr/bin/curl", ["-sS", "--http1.1", "--cacert", pki.ca, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
            #expect(curl1.output == "1.1 200")

            // Many concurrent HTTP/2 streams on one connection with 256 KiB bodies both ways (streamed back by
            // the upstream), every byte intact.
            let payload = ByteBuffer(bytes: (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<32 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/upload/\(i)")
                        request.method = .POST
                        request.body = .bytes(payload)
                        let response = try await h2.execute(request, timeout: .seconds(30))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        return response.status == .ok && response.version == .http2 && body == payload
                    }
                }
                for try await ok in group { #expect(ok) }
            }
            // A POST without Content-Length over HTTP/2 reaches the HTTP/1.1 upstream chunked.
            let chunked = try runTool("/usr/bin/curl", [
                "-sS", "--http2", "--cacert", pki.ca, "-H", "Content-Length:", "-H", "Transfer-Encoding:", "--data-binary", "hello h2",
                "-o", "-", url,
            ])
            #expect(chunked.output == "hello h2")
        } catch {
            Issue.record(error)
        }
        try? await h2.shutdown()
        try? await h1.shutdown()
        await gh.stop()
        await up.stop()
    }

    @Test func oldTLSVersionsAreRefused() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let up = try await Upstream()
        let gh = try await Self.start(pki, up: up)
        let strict = try await Self.start(pki, up: up, minVersion: .v1_3)
        func handshake(_ port: Int, _ flag: String) throws -> Bool {
            let r = try pki.openssl(
                ["s_client", "-connect", "127.0.0.1:\(port)", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", pki.ca], input: "")
            return r.output.contains("Verify return code: 0 (ok)") && r.status == 0
        }
        let port = try #require(gh.server.tlsAddresses.first?.port)
        let strictPort = try #require(strict.server.tlsAddresses.first?.port)
        #expect(!(try handshake(port, "-tls1")))
        #expect(!(try handshake(port, "-tls1_1")))
        #expect(try handshake(port, "-tls1_2"))
        #expect(try handshake(port, "-tls1_3"))
        #expect(!(try handshake(strictPort, "-tls1_2")))
        #expect(try handshake(strictPort, "-tls1_3"))
        await gh.stop()
        await strict.stop()
        await up.stop()
    }

    @Test func certificateReloadUnderLoadLosesNoRequest() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let up = try await Upstream()
        let gh = try await Self.start(pki, up: up)
        let port = try #require(gh.server.tlsAddresses.first?.port)
        func serial() throws -> String {
            let r = try pki.openssl(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.ca], input: "")
            guard let pem = r.output.range(of: "-----BEGIN CERTIFICATE-----").map({ String(r.output[$0.lowerBound...]) }) else { return "" }
            let cert = pki.dir.appendingPathComponent("seen.pem")
            try pem.write(to: cert, atomically: true, encoding: .utf8)
            return try pki.openssl(["x509", "-in", cert.path, "-noout", "-serial"]).output
        }
        let before = try serial()
        #expect(before.hasPrefix("serial="))
        let h1 = try Self.client(trusting: pki.ca, http1Only: true)
        // Load: sequential requests, each on a new TLS connection (Connection: close), while the certificate is
        // replaced and reloaded twice, once with a broken file.
        let load = Task { () -> (ok: Int, failed: Int) in
            var ok = 0
            var failed = 0
            for _ in 0..<150 {
                var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/x")
                request.headers.add(name: "Connection", value: "close")
                if let r = try? await h1.execute(request, timeout: .seconds(10)), r.status == .ok {
                    _ = try? await r.body.collect(upTo: 1 << 20)
                    ok += 1
                } else {
                    failed += 1
                }
            }
            return (ok, failed)
        }
        try pki.issue(name: "server", cn: "127.0.0.1")  // a new certificate and key, same names
        #expect(gh.server.reloadTLS(reason: "test"))
        let after = try serial()
        #expect(after.hasPrefix("serial="))
        #expect(after != before)
        // A broken replacement keeps the working certificate.
        let good = try String(contentsOfFile: pki.cert, encoding: .utf8)
        try "not a certificate".write(toFile: pki.cert, atomically: true, encoding: .utf8)
        #expect(!gh.server.reloadTLS(reason: "test"))
        #expect(try serial() == after)
        try good.write(toFile: pki.cert, atomically: true, encoding: .utf8)
        let result = await load.value
        #expect(result.failed == 0)
        #expect(result.ok == 150)
        #expect(gh.log.all.contains { $0.contains("TLS certificate reload failed") })
        try? await h1.shutdown()
        await gh.stop()
        await up.stop()
    }

    /// A client that reads an HTTP/2 response slowly: backpressure reaches the upstream (stream flow control,
    /// then the upstream connection's reads), so Gatehouse buffers a bounded amount, not the 200 MiB the upstream
    /// could send. Client (curl, rate-limited), proxy and upstream: the proxy and upstream run in this process.
    @Test func slowHTTP2ReaderKeepsMemoryBounded() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], server: { $0.http2.cleartext = true })
        let before = residentBytes()
        let slow = try runTool("/usr/bin/curl", [
            "-sS", "--http2-prior-knowledge", "--limit-rate", "256k", "--max-time", "4", "-o", "/dev/null", "-w", "%{size_download}",
            "\(gh.base)/bytes/\(200 << 20)",
        ])
        let after = residentBytes()
        #expect(slow.status == 28)  // curl's "timed out": it was still reading slowly
        let downloaded = Int(slow.output) ?? 0
        #expect(downloaded > 100_000 && downloaded < 8 << 20, "\(downloaded) bytes")
        #expect(after - before < 48 << 20, "RSS grew by \((after - before) >> 20) MiB")
        // The connection is healthy afterwards.
        let again = try runTool("/usr/bin/curl", ["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "\(gh.base)/x"])
        #expect(again.output == "200")
        await gh.stop()
        await up.stop()
    }

    /// An HTTP/2 connection whose only stream waits for a slow upstream longer than the idle timeout is not
    /// closed as idle (the upstream timeouts bound that wait).
    @Test func http2IdleTimeoutSparesOpenStreams() async throws {
        let gated = try await GatedUpstream()
        let gh = try await Harness.start(
            routes: [route("slow", upstream: gated.target)],
            server: {
                $0.http2.cleartext = true
                $0.idleTimeout = .seconds(1)
            })
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "\(gh.base)/slow"]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        var arrivals = gated.arrivals.makeAsyncIterator()
        _ = await arrivals.next()
        // The scenario itself: the connection stays without frames for longer than the idle timeout.
        try await Task.sleep(for: .milliseconds(2500))
        gated.release()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        #expect(String(decoding: data, as: UTF8.self) == "2 200")
        await gh.stop()
        await gated.stop()
    }

    @Test func cleartextHTTP2WithPriorKnowledge() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], server: { $0.http2.cleartext = true })
        let url = "\(gh.base)/h2c"
        let h2c = try runTool("/usr/bin/curl", ["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
        #expect(h2c.output == "2 200")
        // The same listener still speaks HTTP/1.1.
        let h1 = try runTool("/usr/bin/curl", ["-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
        #expect(h1.output == "1.1 200")
        await gh.stop()
        await up.stop()
    }
}

@Suite(.serialized) struct UpstreamTLSTests {
    final class TLSUpstream: Sendable {
        let channel: Channel
        let group: MultiThreadedEventLoopGroup
        init(pki: TestPKI, requireClientCertificate: Bool) async throws {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(pki.cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.key, format: .pem)))
            if requireClientCertificate {
                tls.certificateVerification = .noHostnameVerification
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(pki.ca))
            }
            channel = try await EchoUpstream.start(group: group, tls: try NIOSSLContext(configuration: tls))
        }
        var port: Int { channel.localAddress?.port ?? 0 }
        func stop() async {
            try? await channel.close()
            try? await group.shutdownGracefully()
        }
    }

    @Test func privateCAWrongCAAndMutualTLS() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let plain = try await TLSUpstream(pki: pki, requireClientCertificate: false)
        let mtls = try await TLSUpstream(pki: pki, requireClientCertificate: true)
        func target(_ port: Int, _ tls: UpstreamTLS) -> UpstreamTarget {
            UpstreamTarget(scheme: .https, host: "127.0.0.1", port: port, tls: tls)
        }
        let routes = [
            RouteConfig(id: "ca", pathPrefix: "/ca", upstream: target(plain.port, UpstreamTLS(caFile: pki.ca)), auth: .none),
            RouteConfig(id: "sni", pathPrefix: "/sni", upstream: target(plain.port, UpstreamTLS(caFile: pki.ca, serverName: "localhost")), auth: .none),
            RouteConfig(id: "wrong", pathPrefix: "/wrong", upstream: target(plain.port, UpstreamTLS(caFile: pki.otherCA)), auth: .none),
            RouteConfig(id: "system", pathPrefix: "/system", upstream: target(plain.port, UpstreamTLS()), auth: .none),
            RouteConfig(id: "insecure", pathPrefix: "/insecure", upstream: target(plain.port, UpstreamTLS(insecureSkipVerify: true)), auth: .none),
            RouteConfig(id: "nocert", pathPrefix: "/nocert", upstream: target(mtls.port, UpstreamTLS(caFile: pki.ca)), auth: .none),
            RouteConfig(
                id: "mtls", pathPrefix: "/mtls",
                upstream: target(mtls.port, UpstreamTLS(caFile: pki.ca, clientCertificateFile: pki.clientCert, clientKeyFile: pki.clientKey)),
                auth: .none),
        ]
        let gh = try await Harness.start(routes: routes)
        func status(_ path: String) async throws -> Int {
            Int(try await HTTPClient.shared.execute(HTTPClientRequest(url: gh.base + path), timeout: .seconds(10)).status.code)
        }
        #expect(try await status("/ca/x") == 200)
        #expect(try await status("/ca/y") == 200)  // a pooled TLS connection, reused
        #expect(try await status("/sni/x") == 200)
        #expect(try await status("/wrong/x") == 502)
        #expect(try await status("/system/x") == 502)
        #expect(try await status("/insecure/x") == 200)
        #expect(try await status("/nocert/x") == 502)
        #expect(try await status("/mtls/x") == 200)
        #expect(gh.log.all.contains { $0.contains("TLS verification is OFF") })
        #expect(gh.log.accessLines().contains { ($0["route"] as? String) == "wrong" && ($0["detail"] as? String) == "upstream TLS handshake failed" })
        await gh.stop()
        await plain.stop()
        await mtls.stop()
    }
}
