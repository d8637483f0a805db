import GatehouseCore
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import GatehouseServer

/// The HTTP/1.1 edge on an `EmbeddedChannel`, for what it decides without an upstream: local answers, their
/// framing and connection handling, pipelining order, malformed and oversized heads. (An embedded loop has no
/// upstream pool, so a permitted request gets 502 "no upstream pool": that is asserted too.)
@Suite struct HTTP1ConnectionTests {
    struct Edge {
        let channel: EmbeddedChannel
        let log: LogCapture
        let group: MultiThreadedEventLoopGroup

        init(maxHeaderBytes: Int = 8 * 1024) throws {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let server = ServerConfig(
                listen: [ListenAddress(host: "127.0.0.1", port: 0)], adminListen: nil, maxHeaderBytes: maxHeaderBytes)
            let upstream = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 9, basePath: "")
            let config = GatewayConfig(
                server: server, providers: [], identityHeaders: GatewayConfig.defaultIdentityHeaders,
                routes: [route("api", path: "/api", upstream: upstream, methods: ["GET"])])
            let log = LogCapture()
            let sink = log.sink
            let runtime = ProxyRuntime(
                config: config, group: group,
                accessLog: AccessLog(format: .json) { StructuredLogHandler(label: $0, format: .json, sink: sink) },
                logger: Logger(label: "test"), authenticator: nil)
            self.log = log
            channel = EmbeddedChannel()
            let timeouts = ConnectionTimeoutHandler(requestHeader: .seconds(10), idle: .seconds(10))
            try channel.pipeline.syncOperations.addHandler(LingeringCloseHandler())
            try channel.pipeline.syncOperations.addHandler(timeouts)
            try channel.pipeline.syncOperations.addHandler(
                HTTP1Connection(runtime: runtime, timeouts: timeouts, scheme: "http", eventLoop: channel.eventLoop))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func send(_ text: String) throws { try channel.writeInbound(ByteBuffer(string: text)) }

        func output() throws -> String {
            var out = ""
            while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
            return out
        }

        func stop() { try? group.syncShutdownGracefully() }
    }

    @Test func anUnknownPathIs404AndTheConnectionStaysOpen() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("GET /nowhere HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1\r\n\r\n")
        let out = try e.output()
        #expect(out.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(out.contains("X-Request-Id: abc-1\r\n"))
        #expect(out.contains("Content-Length: "))
        #expect(!out.contains("Connection: close"))
        #expect(e.channel.isActive)
        let line = try #require(e.log.accessLines().last)
        #expect(line["status"] as? String == "404")
        #expect(line["request_id"] as? String == "abc-1")
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send(
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nHEAD /b HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        let out = try e.output()
        let statuses = out.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["404", "405", "404"])
        // HEAD: the length of the body it would have had, and no body.
        #expect(out.hasSuffix("\r\n\r\n"))
    }

    @Test func aLocalAnswerToARequestWithAnUnreadBodyCloses() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial")
        let out = try e.output()
        #expect(out.hasPrefix("HTTP/1.1 404 "))
        #expect(out.contains("Connection: close\r\n"))
    }

    @Test func malformedAndOversizedHeadsGet400And431() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("GET / HTTP/1.1\r\nHost : a\r\n\r\n")
        let out = try e.output()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(out.contains("Connection: close\r\n"))
        #expect(out.contains("malformed HTTP request"))

        let f = try Edge(maxHeaderBytes: 1024)
        defer { f.stop() }
        try f.send("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n")
        #expect(try f.output().hasPrefix("HTTP/1.1 431 "))
        #expect(f.log.accessLines().last?["status"] as? String == "431")
    }

    @Test func http10GetsKeepAliveOnlyWhenItAsks() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let out = try e.output()
        #expect(out.hasPrefix("HTTP/1.0 404 "))
        #expect(out.contains("Connection: keep-alive\r\n"))
        try e.send("GET /y HTTP/1.0\r\n\r\n")
        #expect(try e.output().contains("Connection: close\r\n"))
    }

    @Test func aPermittedRequestWithoutAnUpstreamPoolGets502() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
        let out = try e.output()
        #expect(out.hasPrefix("HTTP/1.1 502 "))
        #expect(e.log.accessLines().last?["route"] as? String == "api")
    }

    @Test func aClientThatGoesAwayMidRequestIsLogged499() throws {
        let e = try Edge()
        defer { e.stop() }
        try e.send("GET /api/x HTTP/1.1\r\nHost: a\r\n")  // head incomplete: nothing to log yet
        _ = try? e.channel.close().wait()
        #expect(e.log.accessLines().isEmpty)
    }
}
