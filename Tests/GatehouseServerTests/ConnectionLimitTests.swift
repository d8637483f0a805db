import GatehouseCore
import Glibc
import NIOCore
import NIOHPACK
import Testing

@testable import GatehouseServer

/// `server.limits.max_connections`, `max_connections_per_client` and `max_header_count`: the admission decision
/// as a table, then against the real listener.
@Suite struct ConnectionLimitTests {
    @Test func admissionCountsTotalAndPerClient() {
        var a = ConnectionAdmission(maxTotal: 3, maxPerClient: 2)
        #expect(a.admit("10.0.0.1") == .admit)
        #expect(a.admit("10.0.0.1") == .admit)
        #expect(a.admit("10.0.0.1") == .refusePerClient)  // the address is at its limit
        #expect(a.admit("10.0.0.2") == .admit)
        #expect(a.admit("10.0.0.3") == .refuseTotal)  // everything is at the limit
        #expect(a.total == 3 && a.refusedTotal == 1 && a.refusedPerClient == 1)
        a.release("10.0.0.1")
        #expect(a.perClient["10.0.0.1"] == 1)
        #expect(a.admit("10.0.0.3") == .admit)
        for client in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] { a.release(client) }
        #expect(a.total == 0 && a.perClient.isEmpty)  // nothing left behind for addresses that went away
    }

    @Test func noPerClientLimitAtZeroAndUnixPeersCountOnlyTowardTheTotal() {
        var a = ConnectionAdmission(maxTotal: 2, maxPerClient: 0)
        #expect(a.admit("10.0.0.1") == .admit)
        #expect(a.admit("10.0.0.1") == .admit)
        #expect(a.admit(nil) == .refuseTotal)
        var b = ConnectionAdmission(maxTotal: 5, maxPerClient: 1)
        #expect(b.admit(nil) == .admit)
        #expect(b.admit(nil) == .admit)
        #expect(b.perClient.isEmpty)
    }

    @Test func mappedIPv6IsTheSameClientAsIPv4() throws {
        let v4 = try SocketAddress(ipAddress: "192.0.2.7", port: 1)
        let mapped = try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 2)
        #expect(ConnectionAdmission.clientKey(v4) == "192.0.2.7")
        #expect(ConnectionAdmission.clientKey(mapped) == "192.0.2.7")
    }

    func get(_ client: RawClient) -> Int? {
        client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        return client.readResponses(1).first?.status
    }

    @Test func aConnectionOverTheLimitGets503AndTheNextOneAfterACloseIsServed() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], server: { $0.maxConnections = 2 })
        defer {
            Task {
                await gh.stop()
                await up.stop()
            }
        }
        let held = try RawClient(port: gh.port)
        let second = try RawClient(port: gh.port)
        #expect(await offPool { self.get(held) } == 200)
        #expect(await offPool { self.get(second) } == 200)
        let third = try RawClient(port: gh.port)
        third.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")  // sent before reading: the answer must still arrive
        let (text, closed) = await offPool { third.readToClose() }
        #expect(text.hasPrefix("HTTP/1.1 503 "))
        #expect(text.contains("\r\nRetry-After: 1\r\n") && text.contains("\r\nConnection: close\r\n"))
        #expect(text.hasSuffix("too many connections\n"))
        #expect(closed)
        #expect(gh.server.connectionRefusals.total >= 1)
        #expect(gh.log.all.contains { $0.contains("client connection refused") })
        // Once a connection closes its place is free again (the release runs when the server sees the close: each
        // attempt is a full round trip, bounded in number).
        shutdown(held.fd, Int32(SHUT_RDWR))
        var served = false
        for _ in 0..<200 where !served {
            let next = try RawClient(port: gh.port)
            served = await offPool { self.get(next) } == 200
        }
        #expect(served)
    }

    @Test func oneAddressCannotTakeEveryConnection() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(
            routes: [route("app", upstream: up.target)], server: { $0.maxConnectionsPerClient = 1 })
        defer {
            Task {
                await gh.stop()
                await up.stop()
            }
        }
        let first = try RawClient(port: gh.port)
        #expect(await offPool { self.get(first) } == 200)
        let second = try RawClient(port: gh.port)
        let (text, _) = await offPool { second.readToClose() }
        #expect(text.hasPrefix("HTTP/1.1 503 "))
        #expect(text.hasSuffix("too many connections from this address\n"))
        #expect(gh.server.connectionRefusals.perClient == 1)
    }

    @Test func headerCountLimitOnHTTP1() async throws {
        let up = try await Upstream()
        let gh = try await Harness.start(routes: [route("app", upstream: up.target)], server: { $0.maxHeaderCount = 5 })
        defer {
            Task {
                await gh.stop()
                await up.stop()
            }
        }
        let fields = (1...4).map { "X-F\($0): v\r\n" }.joined()
        let atLimit = try RawClient(port: gh.port)
        atLimit.send("GET /a HTTP/1.1\r\nHost: x\r\n\(fields)\r\n")
        #expect(await offPool { atLimit.readResponses(1).first?.status } == 200)
        let over = try RawClient(port: gh.port)
        over.send("GET /a HTTP/1.1\r\nHost: x\r\n\(fields)X-F5: v\r\n\r\n")
        let refused = await offPool { over.readResponses(1).first }
        #expect(refused?.status == 431)
        #expect(refused?.body == "more than 5 request header fields\n")
    }

    @Test func headerCountLimitOnHTTP2StreamsIgnoresCookieCrumbs() throws {
        var headers = HPACKHeaders([(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "x")])
        for i in 1...3 { headers.add(name: "x-f\(i)", value: "v") }
        for i in 1...10 { headers.add(name: "cookie", value: "c\(i)=v") }
        let head = try HTTP2Mapping.requestHead(headers, endStream: true, maxFields: 3)
        // ... and reach an HTTP/1.1 upstream as one Cookie field (RFC 9113 §8.2.3), where the first crumb was.
        let cookies = head.stringFields.filter { $0.name == "cookie" }.map(\.value)
        #expect(cookies == [(1...10).map { "c\($0)=v" }.joined(separator: "; ")])
        #expect(head.stringFields.map(\.name) == ["host", "x-f1", "x-f2", "x-f3", "cookie"])
        headers.add(name: "x-f4", value: "v")
        #expect(throws: GatehouseError.tooManyHeaderFields(limit: 3)) {
            try HTTP2Mapping.requestHead(headers, endStream: true, maxFields: 3)
        }
    }
}
