import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What a listening socket does when `accept` fails (EMFILE/ENFILE when file descriptors run out, ENOBUFS,
/// ENOMEM). NIO keeps the listener open, but it also keeps it registered for readability (the read that failed
/// is still pending), and the connections waiting in the backlog keep it readable: accepting is retried at once,
/// again and again, and a core spins for as long as the descriptors are gone (measured: two million failed
/// accepts in 20 s; NIO's `AcceptBackoffHandler` only delays new `read` calls, so it does not stop this).
/// `AcceptErrorHandler` turns `autoRead` off, which takes the listener out of the event loop's interest set, and
/// on again after `pause` (nginx pauses 500 ms); it counts every failure and logs the 1st, 2nd, 4th, 8th ... (a
/// flood must not flood the log too). The waiting connections are accepted once descriptors are free again.
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Channel

    static let pause: TimeAmount = .milliseconds(500)

    let logger: Logger
    let listener: String
    let count: NIOLockedValueBox<Int>
    let pause: TimeAmount
    private var paused = false

    init(logger: Logger, listener: String, count: NIOLockedValueBox<Int>, pause: TimeAmount = AcceptErrorHandler.pause)
    {
        self.logger = logger
        self.listener = listener
        self.count = count
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is IOError else { return context.fireErrorCaught(error) }
        let n = count.withLockedValue {
            $0 += 1
            return $0
        }
        if n & (n - 1) == 0 {
            logger.error(
                "accepting connections failed; pausing accept",
                metadata: [
                    "listener": "\(listener)", "error": "\(error)", "errors_so_far": "\(n)",
                    "pause_ms": "\(pause.nanoseconds / 1_000_000)",
                ])
        }
        if !paused, let options = context.channel.syncOptions, (try? options.setOption(.autoRead, value: false)) != nil
        {
            paused = true
            context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
                paused = false
                try? context.channel.syncOptions?.setOption(.autoRead, value: true)
            }
        }
        context.fireErrorCaught(error)
    }
}
