import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseServer

/// `server.upstream.max_connections_per_loop` and `queue_timeout` against a real upstream that holds requests:
/// a request over the limit waits for a connection in order, and gets 503 `upstream_busy` when none frees up.
@Suite struct UpstreamLimitTests {
    @Test func aRequestOverTheLimitWaitsThenGets503() async throws {
        let gate = try await GatedUpstream()
        let gh = try await Harness.start(
            routes: [route("app", upstream: gate.target)],
            server: {
                $0.upstreamMaxConnectionsPerLoop = 1
                $0.upstreamQueueTimeout = .milliseconds(300)
            }, workers: 1)
        defer {
            Task {
                await gh.stop()
                await gate.stop()
            }
        }
        var arrivals = gate.arrivals.makeAsyncIterator()
        let first = try RawClient(port: gh.port)
        first.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        let held = Task { await offPool { first.readResponses(1).first } }
        _ = await arrivals.next()
        // The one connection is busy: the second request waits, then is refused (it never reached the upstream).
        let second = try RawClient(port: gh.port)
        second.send("GET /over HTTP/1.1\r\nHost: x\r\n\r\n")
        let refused = await offPool { second.readResponses(1).first }
        #expect(refused?.status == 503)
        #expect(refused?.headers["retry-after"] == "1")
        #expect(gh.log.accessLines().contains { $0["error"] as? String == "upstream_busy" })
        gate.release()
        #expect(await held.value?.status == 200)
    }

    @Test func aWaitingRequestGetsTheReleasedConnection() async throws {
        let gate = try await GatedUpstream()
        let gh = try await Harness.start(
            routes: [route("app", upstream: gate.target)],
            server: {
                $0.upstreamMaxConnectionsPerLoop = 1
                $0.upstreamQueueTimeout = .seconds(10)
            }, workers: 1)
        defer {
            Task {
                await gh.stop()
                await gate.stop()
            }
        }
        var arrivals = gate.arrivals.makeAsyncIterator()
        let first = try RawClient(port: gh.port)
        first.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let a = Task { await offPool { first.readResponses(1).first } }
        _ = await arrivals.next()
        let second = try RawClient(port: gh.port)
        second.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        let b = Task { await offPool { second.readResponses(1).first } }
        gate.release()
        #expect(await a.value?.status == 200)
        // The second request reaches the upstream only now, on the connection the first one released.
        _ = await arrivals.next()
        gate.release()
        #expect(await b.value?.status == 200)
    }
}
