import GatehouseCore
import GatehouseHTTP
import NIOCore

/// The byte-level HTTP/1 parsers: request head, response head, chunked bodies.
enum HTTPTargets {
    /// What a head parser made of some bytes, for comparing two ways of feeding them.
    enum Reading: Equatable, CustomStringConvertible {
        case needMore
        case failure
        case head(String)
        var description: String {
            switch self {
            case .needMore: return "needMore"
            case .failure: return "failure"
            case .head(let h): return h
            }
        }
    }

    /// The bytes fed to `parse` in pieces of `piece` bytes (the whole input when `piece` >= its size), as an
    /// edge receives them from reads.
    static func feed(_ bytes: [UInt8], piece: Int, parse: (inout ByteBuffer) -> Reading) -> Reading {
        var buffer = ByteBuffer()
        var i = 0
        repeat {
            let end = min(bytes.count, i + max(1, piece))
            buffer.writeBytes(bytes[i..<end])
            i = end
            let r = parse(&buffer)
            if r != .needMore { return r }
        } while i < bytes.count
        return .needMore
    }

    static func readRequest(_ bytes: [UInt8], piece: Int) -> Reading {
        var parser = RequestHeadParser(maxBytes: 4096, maxFields: 32)
        return feed(bytes, piece: piece) { buffer in
            switch parser.parse(&buffer) {
            case .needMore: return .needMore
            case .failure: return .failure
            case .head(let h):
                let fields = h.stringFields.map { "\($0.name): \($0.value)" }
                return .head("\(h.method) \(h.target) \(h.versionMajor).\(h.versionMinor) \(fields)")
            }
        }
    }

    static func readResponse(_ bytes: [UInt8], piece: Int) -> Reading {
        var parser = ResponseHeadParser(maxBytes: 4096, maxFields: 32)
        return feed(bytes, piece: piece) { buffer in
            switch parser.parse(&buffer) {
            case .needMore: return .needMore
            case .failure: return .failure
            case .head(let h):
                let fields = h.stringFields.map { "\($0.name): \($0.value)" }
                return .head("\(h.versionMinor) \(h.status) \(h.string(h.reasonRange)) \(fields)")
            }
        }
    }

    /// Properties: a head reads the same whole and in pieces; an accepted request's target is canonical (a
    /// fixed point, no dot segment); whatever Gatehouse accepts, llhttp reads the same way, body included.
    static func requestHead(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(data)
        let piece = 1 + Int(bytes.last ?? 0) % 17
        let whole = readRequest(bytes, piece: bytes.count)
        let split = readRequest(bytes, piece: piece)
        try require(whole == split, "whole: \(whole), in pieces of \(piece): \(split)")

        var parser = RequestHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        if case .head(let h) = parser.parse(&buffer), let outcome = try? h.validate(maxHeaderBytes: 64 * 1024) {
            try CoreTargets.checkCanonical(outcome.target)
            try require(
                !(outcome.chunked && outcome.contentLength != nil), "both chunked and Content-Length accepted")
        }
        guard let mine = Differential.ourRequest(bytes), Differential.comparable(mine, bytes: bytes) else { return }
        let theirs = Differential.nioRequest(bytes)
        try require(theirs == mine, "Gatehouse read \(mine), llhttp read \(theirs.map(\.description) ?? "nothing")")
    }

    /// Properties: a head reads the same whole and in pieces; what Gatehouse accepts and can delimit, llhttp
    /// reads the same way, body included; a framing that keeps the connection never says "until close".
    static func responseHead(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(data)
        let piece = 1 + Int(bytes.last ?? 0) % 17
        let whole = readResponse(bytes, piece: bytes.count)
        let split = readResponse(bytes, piece: piece)
        try require(whole == split, "whole: \(whole), in pieces of \(piece): \(split)")

        var parser = ResponseHeadParser(maxBytes: 64 * 1024, maxFields: 100)
        var buffer = ByteBuffer(bytes: bytes)
        if case .head(let h) = parser.parse(&buffer) {
            for head in [false, true] {
                guard let framing = try? h.framing(requestWasHEAD: head) else { continue }
                try require(
                    !(framing.keepAlive && framing.body == .untilClose), "keep-alive with a close-delimited body")
                if head || h.status == 204 || h.status == 304 || h.status < 200 {
                    try require(framing.body == .none, "a body on HEAD, 1xx, 204 or 304")
                }
            }
        }
        guard let mine = Differential.ourResponse(bytes), Differential.comparable(mine, bytes: bytes) else { return }
        let theirs = Differential.nioResponse(bytes)
        try require(theirs == mine, "Gatehouse read \(mine), llhttp read \(theirs.map(\.description) ?? "nothing")")
    }

    /// What the decoder made of a chunked body fed in pieces: the output bytes, how it stopped, and how many
    /// input bytes it consumed.
    struct Decoded: Equatable, CustomStringConvertible {
        var output: [UInt8] = []
        var stop = "needMore"
        var consumed = 0
        var description: String {
            "\(stop) after \(consumed) bytes, output \(String(decoding: output, as: UTF8.self).debugDescription)"
        }
    }

    static func decode(_ bytes: [UInt8], piece: Int, mode: ChunkedDecoder.Mode) -> Decoded {
        var decoder = ChunkedDecoder(maxTrailerBytes: 512)
        var buffer = ByteBuffer()
        var result = Decoded()
        var i = 0
        repeat {
            let end = min(bytes.count, i + max(1, piece))
            buffer.writeBytes(bytes[i..<end])
            i = end
            loop: while true {
                let before = buffer.readableBytes
                let out = decoder.next(&buffer, mode: mode)
                result.consumed += before - buffer.readableBytes
                switch out {
                case .bytes(let b): result.output += b.readableBytesView
                case .needMore: break loop
                case .end:
                    result.stop = "end"
                    return result
                case .failure:
                    result.stop = "failure"
                    return result
                }
            }
        } while i < bytes.count
        return result
    }

    /// Properties: the body decodes the same whole and in pieces (up to a failure); passthrough relays a prefix of its input
    /// unchanged except size lines with extensions or whitespace (never more bytes than it read); the payload is what
    /// `payloadBytes` counted; a body that ended in passthrough ends in payload mode with the same bytes consumed.
    static func chunked(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(data)
        let piece = 1 + Int(bytes.last ?? 0) % 7
        for mode in [ChunkedDecoder.Mode.passthrough, .payload] {
            let whole = decode(bytes, piece: bytes.count, mode: mode)
            let split = decode(bytes, piece: piece, mode: mode)
            // After a failure the exchange is aborted; what was relayed before it depends on the reads.
            let same = whole.stop == "failure" ? split.stop == "failure" : whole == split
            try require(same, "\(mode): whole \(whole), in pieces of \(piece) \(split)")
        }
        let pass = decode(bytes, piece: bytes.count, mode: .passthrough)
        let payload = decode(bytes, piece: bytes.count, mode: .payload)
        try require(pass.stop == payload.stop, "passthrough stopped \(pass.stop), payload \(payload.stop)")
        try require(pass.output.count <= pass.consumed, "passthrough wrote more than it read")
        // Size lines with extensions (or whitespace before them) are rewritten; everything else passes unchanged.
        if !bytes.contains(where: { $0 == UInt8(ascii: ";") || $0 == 0x20 || $0 == 0x09 }) {
            try require(pass.output == Array(bytes[0..<pass.output.count]), "passthrough changed the bytes: \(pass)")
        }
        try require(payload.output.count <= payload.consumed, "payload longer than its input")
        if pass.stop == "end" {
            try require(pass.consumed == payload.consumed, "the body's end is not where both modes see it")
            // Re-framing the payload as one chunk decodes to the same payload.
            var reframed = Array(String(payload.output.count, radix: 16).utf8) + [0x0D, 0x0A] + payload.output
            reframed += Array("\r\n0\r\n\r\n".utf8)
            if payload.output.isEmpty { reframed = Array("0\r\n\r\n".utf8) }
            let again = decode(reframed, piece: reframed.count, mode: .payload)
            try require(again.stop == "end" && again.output == payload.output, "re-framed payload differs")
        }
    }
}
