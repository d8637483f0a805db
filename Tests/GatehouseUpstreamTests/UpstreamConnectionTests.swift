import GatehouseCore
import GatehouseHTTP
import NIOCore
import NIOEmbedded
import Testing

@testable import GatehouseUpstream

/// The upstream connection handler on an `EmbeddedChannel`: what it writes, what it reports, and when it lets
/// the connection be reused.
@Suite struct UpstreamConnectionTests {
    final class Recorder: UpstreamExchange {
        var events: [String] = []
        var body = ""
        var writable = true
        var clientIsWritable: Bool { writable }
        func upstreamHead(_ head: ResponseHead, framing: BodyFraming) {
            events.append("head \(head.status) \(framing)")
        }
        func upstreamBody(_ bytes: ByteBuffer) { body += String(buffer: bytes) }
        func upstreamEnd(early: Bool) { events.append(early ? "end early" : "end") }
        func upstreamReadComplete() {}
        func upstreamWritable() { events.append("writable") }
        func upstreamFailed(_ failure: UpstreamFailure) { events.append("failed \(failure)") }
    }

    struct Setup {
        let channel: EmbeddedChannel
        let connection: UpstreamConnection
        let recorder = Recorder()
        var releases: [Bool] { releasesBox.values }
        let releasesBox = Box()
        final class Box { var values: [Bool] = [] }

        init() throws {
            connection = UpstreamConnection()
            channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(connection)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            let box = releasesBox
            connection.onRelease = { _, reusable in box.values.append(reusable) }
        }

        func begin(_ head: String = "GET / HTTP/1.1\r\nHost: u\r\n\r\n", isHEAD: Bool = false, upgrade: Bool = false)
            throws -> String
        {
            connection.begin(
                recorder, head: ByteBuffer(string: head), isHEAD: isHEAD, upgrade: upgrade, chunkMode: .passthrough)
            connection.flush()
            return try written()
        }

        func written() throws -> String {
            var out = ""
            while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
            return out
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    @Test func aLengthDelimitedResponseInPiecesIsRelayedAndTheConnectionReused() throws {
        let s = try Setup()
        #expect(try s.begin() == "GET / HTTP/1.1\r\nHost: u\r\n\r\n")
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 200 OK\r\nContent-Le")
        #expect(s.recorder.events.isEmpty)
        try s.send("ngth: 5\r\n\r\nhe")
        try s.send("llo")
        #expect(s.recorder.events == ["head 200 length(5)", "end"])
        #expect(s.recorder.body == "hello")
        #expect(s.releases == [true])
        #expect(s.connection.machine.state == .idle)
        #expect(s.channel.isActive)
    }

    @Test func aChunkedResponseIsPassedThroughValidated() throws {
        let s = try Setup()
        _ = try s.begin()
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n")
        #expect(s.recorder.events == ["head 200 chunked", "end"])
        // The extension is dropped, the last chunk and its trailers are the caller's to write.
        #expect(s.recorder.body == "3\r\nabc\r\n")
        #expect(s.releases == [true])
    }

    @Test func connectionCloseAndHTTP10AreNeverReused() throws {
        for response in [
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        ] {
            let s = try Setup()
            _ = try s.begin()
            s.connection.endRequest(lastChunk: false)
            try s.send(response)
            #expect(s.recorder.events == ["head 200 none", "end"], "\(response)")
            #expect(s.releases == [false])
            #expect(!s.channel.isActive)
        }
    }

    @Test func aResponseBeforeTheBodyIsSentEndsEarlyAndCloses() throws {
        let s = try Setup()
        _ = try s.begin("POST / HTTP/1.1\r\nHost: u\r\nContent-Length: 10\r\n\r\n")
        try s.send("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        #expect(s.recorder.events == ["head 413 none", "end early"])
        #expect(s.releases == [false])
        #expect(!s.channel.isActive)
    }

    @Test func interimResponsesAreSkipped() throws {
        let s = try Setup()
        _ = try s.begin()
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        try s.send("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(s.recorder.events == ["head 204 none", "end"])
        #expect(s.releases == [true])
    }

    @Test func aHEADResponseHasNoBodyWhateverItsLengthSays() throws {
        let s = try Setup()
        _ = try s.begin("HEAD / HTTP/1.1\r\nHost: u\r\n\r\n", isHEAD: true)
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        #expect(s.recorder.events == ["head 200 none", "end"])
        #expect(s.releases == [true])
    }

    @Test func aMalformedOrAmbiguousResponseFailsAndCloses() throws {
        for response in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let s = try Setup()
            _ = try s.begin()
            s.connection.endRequest(lastChunk: false)
            try s.send(response)
            #expect(s.recorder.events.last?.hasPrefix("failed protocolError") == true, "\(response)")
            #expect(!s.channel.isActive, "\(response)")
            #expect(s.releases.allSatisfy { !$0 })
        }
    }

    @Test func aCloseMidBodyFailsButEndsACloseDelimitedBody() throws {
        let s = try Setup()
        _ = try s.begin()
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        s.channel.pipeline.fireChannelInactive()
        #expect(s.recorder.events == ["head 200 length(10)", "failed closed"])

        let t = try Setup()
        _ = try t.begin()
        t.connection.endRequest(lastChunk: false)
        try t.send("HTTP/1.1 200 OK\r\n\r\nall of it")
        t.channel.pipeline.fireChannelInactive()
        #expect(t.recorder.events == ["head 200 untilClose", "end"])
        #expect(t.recorder.body == "all of it")
    }

    @Test func bytesOnAnIdleConnectionCloseIt() throws {
        let s = try Setup()
        try s.send("HTTP/1.1 200 OK\r\n\r\n")
        #expect(!s.channel.isActive)
        #expect(s.connection.machine.state == .closed)
    }

    @Test func bytesAfterACompleteResponseAreNotReused() throws {
        let s = try Setup()
        _ = try s.begin()
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\n")
        #expect(s.recorder.body == "a")
        #expect(s.releases == [false])
        #expect(!s.channel.isActive)
    }

    @Test func anUpgradeKeepsTheBytesAfterThe101ForTheTunnel() throws {
        let s = try Setup()
        _ = try s.begin(upgrade: true)
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
        #expect(s.recorder.events == ["head 101 none"])
        #expect(s.connection.machine.state == .upgraded)
        let leftover = s.connection.detachForTunnel()
        #expect(leftover.map { String(buffer: $0) } == "hello")
        #expect(s.releases.isEmpty)
    }

    @Test func aRefusedUpgradeIsRelayedAndNotReused() throws {
        let s = try Setup()
        _ = try s.begin(upgrade: true)
        s.connection.endRequest(lastChunk: false)
        try s.send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        #expect(s.recorder.events == ["head 403 none", "end"])
        #expect(s.releases == [false])
    }

    @Test func aChunkedRequestEndsWithTheLastChunk() throws {
        let s = try Setup()
        _ = try s.begin("POST / HTTP/1.1\r\nHost: u\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.connection.write(ByteBuffer(string: "3\r\nabc\r\n"))
        s.connection.endRequest(lastChunk: true)
        #expect(try s.written() == "3\r\nabc\r\n0\r\n\r\n")
    }
}
