import AsyncHTTPClient
import Foundation
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import GatehouseServer

/// Collects the structured log lines Gatehouse writes, so tests can assert on the access log.
final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    var all: [String] { lines.withLockedValue { $0 } }
    var sink: LogSink { LogSink { [lines] line in lines.withLockedValue { $0.append(line) } } }
    func accessLines() -> [[String: Any]] {
        all.compactMap { line in
            guard let data = line.data(using: .utf8),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                obj["logger"] as? String == "gatehouse.access"
            else { return nil }
            return obj
        }
    }
}

/// Gatehouse in-process on 127.0.0.1:0 in front of a real upstream.
struct Harness {
    let group: MultiThreadedEventLoopGroup
    let server: GatehouseServer
    let log: LogCapture
    let port: Int
    let adminPort: Int?
    let background: Task<Void, Never>

    /// Starts Gatehouse. With providers, their keys are fetched once before this returns (unless
    /// `prefetchKeys` is false) and the background refresh runs until `stop()`.
    static func start(
        routes: [RouteConfig], providers: [ProviderConfig] = [], identityHeaders: [IdentityHeader] = GatewayConfig.defaultIdentityHeaders,
        prefetchKeys: Bool = true, server configure: (inout ServerConfig) -> Void = { _ in }, workers: Int = 2,
        session: SessionConfig? = nil, login: LoginConfig = LoginConfig()
    ) async throws -> Harness {
        var serverConfig = ServerConfig(
            listen: [ListenAddress(host: "127.0.0.1", port: 0)], adminListen: ListenAddress(host: "127.0.0.1", port: 0))
        configure(&serverConfig)
        let config = GatewayConfig(
            server: serverConfig, providers: providers, identityHeaders: identityHeaders, routes: routes, session: session,
            login: login)
        return try await start(config: config, prefetchKeys: prefetchKeys, workers: workers)
    }

    /// Starts Gatehouse on a complete config (e.g. a shipped file loaded with test ports).
    static func start(config: GatewayConfig, prefetchKeys: Bool = true, workers: Int = 2) async throws -> Harness {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: workers)
        let providers = config.providers
        let log = LogCapture()
        let sink = log.sink
        let factory: @Sendable (String) -> LogHandler = { label in
            StructuredLogHandler(label: label, format: .json, sink: sink)
        }
        let server = try GatehouseServer(
            config: config, group: group, logger: Logger(label: "test", factory: factory), logHandlerFactory: factory)
        if prefetchKeys, let store = server.keyStore {
            for p in providers { _ = await store.refresh(providerID: p.id) }
        }
        try await server.start()
        let background = Task { await server.runBackground() }
        guard let port = server.listeningAddresses.first?.port else { throw TestFailure("no port") }
        return Harness(
            group: group, server: server, log: log, port: port, adminPort: server.adminAddress?.port,
            background: background)
    }

    func stop() async {
        background.cancel()
        await background.value
        await server.shutdown(grace: .seconds(2))
        try? await group.shutdownGracefully()
    }

    var base: String { "http://127.0.0.1:\(port)" }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A real upstream: the built-in echo server, counting accepted connections.
final class Upstream: Sendable {
    let channel: Channel
    let group: MultiThreadedEventLoopGroup
    private let accepts: NIOLockedValueBox<Int>
    /// Connections the upstream accepted so far.
    var accepted: Int { accepts.withLockedValue { $0 } }

    init() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = NIOLockedValueBox(0)
        accepts = box
        channel = try await EchoUpstream.start(group: group) { box.withLockedValue { $0 += 1 } }
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var target: UpstreamTarget { UpstreamTarget(scheme: .http, host: "127.0.0.1", port: port) }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// A TCP server that accepts connections and never answers (for 504 tests), or answers only when told.
final class SilentUpstream: Sendable {
    let channel: Channel
    let group: MultiThreadedEventLoopGroup
    init() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
    }
    var target: UpstreamTarget { UpstreamTarget(scheme: .http, host: "127.0.0.1", port: channel.localAddress?.port ?? 0) }
    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// A port with nothing listening: bind, note the port, close.
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Runs a blocking call (a `RawClient` read) on a thread of its own. On Swift concurrency's cooperative pool (one
/// thread per core, two here) two blocked reads stall every other task of the test, e.g. the one that should
/// make the reads return.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// A blocking raw TCP client for malformed input. Every read is bounded by a receive timeout.
///
/// `@unchecked Sendable` so that `offPool` can read from it on another thread: a test hands a client to one
/// reader at a time and never uses it concurrently; the descriptor is the only state.
final class RawClient: @unchecked Sendable {
    let fd: Int32

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw TestFailure("connect failed") }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Reads until the peer closes (or the timeout); returns the bytes and whether the peer closed.
    func readToClose() -> (String, closed: Bool) {
        var out = unread
        unread = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return (String(decoding: out, as: UTF8.self), true) }
            if n < 0 { return (String(decoding: out, as: UTF8.self), false) }
            out += buf[0..<n]
        }
    }

    /// Bytes read past the responses returned so far (the next response may arrive with the one before, e.g.
    /// an upstream's early final response in the same segment as a 100 Continue).
    private var unread: [UInt8] = []

    /// Reads complete responses (Content-Length framed) until `count` have arrived; what follows them is kept
    /// for the next call.
    func readResponses(_ count: Int) -> [(status: Int, headers: [String: String], body: String)] {
        var responses: [(Int, [String: String], String)] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while responses.count < count {
            if let parsed = RawClient.parseOne(&unread) {
                responses.append(parsed)
                continue
            }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            unread += buf[0..<n]
        }
        return responses.map { (status: $0.0, headers: $0.1, body: $0.2) }
    }

    static func parseOne(_ data: inout [UInt8]) -> (Int, [String: String], String)? {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == sep }) else {
            return nil
        }
        let head = String(decoding: data[0..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        if status >= 100 && status < 200 {
            data.removeFirst(end + 4)
            return (status, headers, "")
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard data.count >= end + 4 + length else { return nil }
        let body = String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        data.removeFirst(end + 4 + length)
        return (status, headers, body)
    }
}

/// The echo upstream's report of what it received.
struct Echo: Decodable {
    let method: String
    let uri: String
    let headers: [[String]]

    func values(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }

    static func decode(_ body: String) throws -> Echo {
        try JSONDecoder().decode(Echo.self, from: Data(body.utf8))
    }
}

func route(
    _ id: String, path: String = "/", upstream: UpstreamTarget, host: String? = nil, maxBody: Int64? = nil,
    preserveHost: Bool = false, encodedSlashes: Bool = false, methods: Set<String>? = nil
) -> RouteConfig {
    RouteConfig(
        id: id, host: host.flatMap(HostPattern.parse), pathPrefix: path, methods: methods, upstream: upstream,
        auth: .none, preserveHost: preserveHost, maxBodyBytes: maxBody, allowEncodedSlashes: encodedSlashes)
}

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// An upstream that holds every request until `release()`: it reports each arrival on `arrivals`.
final class GatedUpstream: Sendable {
    let channel: Channel
    let group: MultiThreadedEventLoopGroup
    let arrivals: AsyncStream<Void>
    private let waiting: NIOLockedValueBox<[Channel]>

    init() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        arrivals = stream
        let box = NIOLockedValueBox<[Channel]>([])
        waiting = box
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(GateHandler(onRequest: {
                        box.withLockedValue { $0.append(ch) }
                        continuation.yield()
                    }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var target: UpstreamTarget { UpstreamTarget(scheme: .http, host: "127.0.0.1", port: channel.localAddress?.port ?? 0) }

    func release() {
        let channels = waiting.withLockedValue { w in
            defer { w = [] }
            return w
        }
        for ch in channels {
            let bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
            ch.writeAndFlush(bytes, promise: nil)
        }
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

final class GateHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let onRequest: () -> Void
    private var seen: [UInt8] = []
    init(onRequest: @escaping () -> Void) { self.onRequest = onRequest }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        seen += Array(unwrapInboundIn(data).readableBytesView)
        if seen.count >= 4, seen.suffix(4).elementsEqual([13, 10, 13, 10]) {
            seen = []
            onRequest()
        }
    }
}

/// An upstream whose first connection answers with bytes that are not HTTP, and every later connection with a
/// valid 200: shows that a connection that saw an error is never reused.
final class FlakyUpstream: Sendable {
    let channel: Channel
    let group: MultiThreadedEventLoopGroup
    private let accepts: NIOLockedValueBox<Int>
    var accepted: Int { accepts.withLockedValue { $0 } }

    init() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = NIOLockedValueBox(0)
        accepts = box
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                let index = box.withLockedValue { n -> Int in
                    n += 1
                    return n
                }
                return ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(
                        GateHandler(onRequest: {
                            let reply =
                                index == 1
                                ? "NOT HTTP AT ALL\r\n\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                            ch.writeAndFlush(ByteBuffer(string: reply), promise: nil)
                        }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var target: UpstreamTarget { UpstreamTarget(scheme: .http, host: "127.0.0.1", port: channel.localAddress?.port ?? 0) }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
