import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import GatehouseServer

/// A listener whose accept fails (EMFILE: file descriptors exhausted) stops accepting for a pause instead of
/// retrying in a busy loop, counts and logs the failures (not one line each), and accepts what waited once the
/// pause is over.
@Suite struct AcceptErrorsTests {
    @Test func acceptFailurePausesAcceptingThenResumes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let log = LogCapture()
        let sink = log.sink
        let logger = Logger(label: "test") { StructuredLogHandler(label: $0, format: .json, sink: sink) }
        let count = NIOLockedValueBox(0)
        let acceptedCount = NIOLockedValueBox(0)
        let accepted = group.next().makePromise(of: Void.self)
        let pause = TimeAmount.seconds(2)
        let server = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptErrorHandler(logger: logger, listener: "127.0.0.1:0", count: count, pause: pause))
                }
            }
            .childChannelInitializer { channel in
                acceptedCount.withLockedValue { $0 += 1 }
                accepted.succeed()
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        group.next().scheduleTask(in: .seconds(15)) { accepted.fail(TestFailure("nothing was accepted")) }

        let emfile = IOError(errnoCode: EMFILE, reason: "accept4(descriptor:addr:len:flags:)")
        let autoRead = try await server.eventLoop.submit {
            for _ in 0..<5 { server.pipeline.fireErrorCaught(emfile) }
            return try server.syncOptions?.getOption(.autoRead)
        }.get()
        #expect(autoRead == false, "the listener must leave the event loop's interest set")
        #expect(count.withLockedValue { $0 } == 5)
        let lines = log.all.filter { $0.contains("accepting connections failed") }
        #expect(lines.count == 3, "logged at the 1st, 2nd and 4th failure: \(lines)")
        #expect(lines.first?.contains("\"listener\":\"127.0.0.1:0\"") == true)

        // A client that connects during the pause waits in the kernel's backlog ...
        let client = try RawClient(port: port)
        #expect(acceptedCount.withLockedValue { $0 } == 0, "accepted during the pause")
        // ... and is accepted when the pause ends.
        try await accepted.futureResult.get()
        #expect(acceptedCount.withLockedValue { $0 } == 1)
        #expect(try await server.eventLoop.submit { try server.syncOptions?.getOption(.autoRead) }.get() == true)
        _ = client
        try await server.close()
        try await group.shutdownGracefully()
    }
}
