import NIOCore

/// Finds, checks and forwards a chunked body (RFC 9112 §7.1) without copying its data.
///
/// Two ways out:
/// - `.passthrough`: the body's bytes as they arrived, as long validated runs that may span many chunks (a
///   chunked body relayed chunked, byte for byte). Two things are rewritten: a chunk-size line with extensions
///   becomes a bare size line (extensions are a smuggling vector with lenient parsers and carry nothing an
///   upstream needs), and the last chunk with its trailers becomes `.end` (the caller writes `0\r\n\r\n`):
///   trailers are dropped, as before.
/// - `.payload`: only the chunks' data (for HTTP/2, for HTTP/1.0 clients, and for re-framing).
///
/// Strict: hex sizes of at most 15 digits, a CRLF after every size line and chunk, no control bytes in
/// extensions or trailers, at most `maxLineBytes` per size line and `maxTrailerBytes` of trailers.
public struct ChunkedDecoder: Sendable {
    public enum Mode: Sendable { case passthrough, payload }

    public enum Output: Sendable, Equatable {
        case bytes(ByteBuffer)
        case needMore
        case end
        case failure(String)
    }

    enum State: Sendable, Equatable {
        case sizeStart
        case size(value: Int64, digits: Int, lineStart: Int)
        /// After the size, in the extensions (`phase`: where in their grammar).
        case ext(value: Int64, lineStart: Int, length: Int, phase: ExtensionPhase)
        case sizeLF(value: Int64, lineStart: Int, hasExtension: Bool)
        case data(remaining: Int64)
        case dataCR
        case dataLF
        case trailerStart
        case trailerName(length: Int)
        case trailerValue
        case trailerLF
        case endLF
        case done
        case failed
    }

    /// Where a chunk-size line's extensions are: `;name[=value]`, repeated, names and values tokens, and no
    /// whitespace anywhere. RFC 9112 §7.1.1 also allows whitespace around `;` and `=` and quoted values;
    /// llhttp refuses those, and so does Gatehouse (nothing needs them, and a reading that differs between two
    /// parsers is a smuggling vector). The fuzz targets' differential against llhttp found each shape this
    /// refuses: `0 \r\n`, `5 junk`, `00 ;a`, `;x=,y`, `;1 0200`, unbalanced quotes.
    enum ExtensionPhase: Sendable, Equatable {
        case beforeName, name, beforeValue, value

        var mayEnd: Bool { self == .name || self == .value }

        func after(_ b: UInt8) -> ExtensionPhase? {
            if b == UInt8(ascii: ";") { return mayEnd ? .beforeName : nil }
            if b == UInt8(ascii: "=") { return self == .name ? .beforeValue : nil }
            guard HTTPBytes.isTokenByte(b) else { return nil }
            return self == .beforeName || self == .name ? .name : .value
        }
    }

    public static let maxLineBytes = 4096
    public let maxTrailerBytes: Int
    var state: State = .sizeStart
    var trailerBytes = 0
    /// A rewritten size line to hand out next.
    var pending: ByteBuffer?
    /// The current trailer field's name, lower-cased, up to 18 bytes (enough to know a framing field).
    var trailerName: [UInt8] = []
    static let framingNames: [[UInt8]] = [Array("content-length".utf8), Array("transfer-encoding".utf8)]
    /// Bytes of the body seen so far (data only), for limits.
    public private(set) var payloadBytes: Int64 = 0

    public init(maxTrailerBytes: Int = 16 * 1024) {
        self.maxTrailerBytes = maxTrailerBytes
    }

    public var isDone: Bool { state == .done }

    @inline(__always)
    static func hex(_ b: UInt8) -> Int64? {
        switch b {
        case 0x30...0x39: return Int64(b - 0x30)
        case 0x41...0x46: return Int64(b - 0x41 + 10)
        case 0x61...0x66: return Int64(b - 0x61 + 10)
        default: return nil
        }
    }

    /// The next piece of output; consumes what it has looked at from `input`. Call again until `.needMore`,
    /// `.end` or `.failure`.
    public mutating func next(_ input: inout ByteBuffer, mode: Mode) -> Output {
        if let p = pending {
            pending = nil
            return .bytes(p)
        }
        switch state {
        case .done: return .end
        case .failed: return .failure("malformed chunked body")
        default: break
        }
        let n = input.readableBytes
        if n == 0 { return .needMore }
        enum Stop {
            case exhausted
            case data(Int, Int)  // payload slice
            case run(end: Int, consumed: Int)  // passthrough: emit [0, end), consume `consumed`
            case end(consumed: Int)
            case failure(String)
        }
        var consumedPayload: Int64 = 0
        let stop: Stop = input.withUnsafeReadableBytes { raw -> Stop in
            var i = 0
            while i < n {
                let b = raw[i]
                switch state {
                case .data(let remaining):
                    let take = Int(min(remaining, Int64(n - i)))
                    consumedPayload += Int64(take)
                    state = Int64(take) == remaining ? .dataCR : .data(remaining: remaining - Int64(take))
                    if mode == .payload {
                        return .data(i, take)
                    }
                    i += take
                    continue
                case .dataCR:
                    guard b == 0x0D else { return .failure("missing CRLF after chunk data") }
                    state = .dataLF
                case .dataLF:
                    guard b == 0x0A else { return .failure("missing CRLF after chunk data") }
                    state = .sizeStart
                case .sizeStart:
                    guard let d = Self.hex(b) else { return .failure("invalid chunk size") }
                    state = .size(value: d, digits: 1, lineStart: i)
                case .size(let value, let digits, let lineStart):
                    if let d = Self.hex(b) {
                        guard digits < 15 else { return .failure("chunk size too large") }
                        state = .size(value: value << 4 | d, digits: digits + 1, lineStart: lineStart)
                    } else if b == UInt8(ascii: ";") {
                        state = .ext(value: value, lineStart: lineStart, length: 1, phase: .beforeName)
                    } else if b == 0x0D {
                        state = .sizeLF(value: value, lineStart: lineStart, hasExtension: false)
                    } else {
                        return .failure("invalid chunk size")
                    }
                case .ext(let value, let lineStart, let length, let phase):
                    guard length < Self.maxLineBytes else { return .failure("chunk extension too long") }
                    if b == 0x0D {
                        guard phase.mayEnd else { return .failure("invalid chunk extension") }
                        state = .sizeLF(value: value, lineStart: lineStart, hasExtension: true)
                    } else {
                        guard let next = phase.after(b) else { return .failure("invalid chunk extension") }
                        state = .ext(value: value, lineStart: lineStart, length: length + 1, phase: next)
                    }
                case .sizeLF(let value, let lineStart, let hasExtension):
                    guard b == 0x0A else { return .failure("missing LF after chunk size") }
                    i += 1
                    if value == 0 {
                        state = .trailerStart
                        if mode == .passthrough, lineStart > 0 { return .run(end: lineStart, consumed: i) }
                        continue
                    }
                    state = .data(remaining: value)
                    if hasExtension, mode == .passthrough {
                        var line = ByteBufferAllocator().buffer(capacity: 18)
                        line.writeString(String(value, radix: 16))
                        line.writeStaticString("\r\n")
                        pending = line
                        return .run(end: lineStart, consumed: i)
                    }
                    continue
                case .trailerStart:
                    if b == 0x0D {
                        state = .endLF
                    } else {
                        guard HTTPBytes.isTokenByte(b) else { return .failure("invalid trailer field") }
                        trailerName = [b >= 0x41 && b <= 0x5A ? b | 0x20 : b]
                        state = .trailerName(length: 1)
                    }
                case .trailerName(let length):
                    if b == UInt8(ascii: ":") {
                        // Framing fields in trailers are refused (RFC 9110 §6.5.1: framing cannot be decided after
                        // the body; llhttp refuses them too, found by the request-head fuzz target's differential).
                        if Self.framingNames.contains(trailerName) { return .failure("framing field in trailers") }
                        state = .trailerValue
                    } else {
                        guard HTTPBytes.isTokenByte(b) else { return .failure("invalid trailer field") }
                        if trailerName.count < 18 { trailerName.append(b >= 0x41 && b <= 0x5A ? b | 0x20 : b) }
                        state = .trailerName(length: length + 1)
                    }
                case .trailerValue:
                    if b == 0x0D {
                        state = .trailerLF
                    } else if !HTTPBytes.isFieldValueByte(b) {
                        return .failure("invalid trailer field")
                    }
                case .trailerLF:
                    guard b == 0x0A else { return .failure("bare CR in trailer") }
                    state = .trailerStart
                case .endLF:
                    guard b == 0x0A else { return .failure("missing LF after last chunk") }
                    state = .done
                    return .end(consumed: i + 1)
                case .done, .failed:
                    return .end(consumed: i)
                }
                switch state {
                case .trailerStart, .trailerName, .trailerValue, .trailerLF, .endLF:
                    trailerBytes += 1
                    if trailerBytes > maxTrailerBytes { return .failure("trailers too large") }
                default: break
                }
                i += 1
            }
            return .exhausted
        }
        payloadBytes += consumedPayload
        switch stop {
        case .failure(let why):
            state = .failed
            return .failure(why)
        case .data(let at, let length):
            input.moveReaderIndex(forwardBy: at)
            guard let slice = input.readSlice(length: length) else { return .failure("internal") }
            return .bytes(slice)
        case .run(let end, let consumed):
            let slice = input.getSlice(at: input.readerIndex, length: end)
            input.moveReaderIndex(forwardBy: consumed)
            if let slice, slice.readableBytes > 0 { return .bytes(slice) }
            return next(&input, mode: mode)
        case .end(let consumed):
            input.moveReaderIndex(forwardBy: consumed)
            return .end
        case .exhausted:
            let runEnd: Int
            switch state {
            // A size line (or the last chunk's line) still incomplete is held back until it is known whether it
            // carries extensions or ends the body.
            case .size(_, _, let lineStart), .ext(_, let lineStart, _, _), .sizeLF(_, let lineStart, _):
                runEnd = lineStart
            case .trailerStart, .trailerName, .trailerValue, .trailerLF, .endLF:
                runEnd = 0
            default:
                runEnd = n
            }
            if mode == .passthrough, runEnd > 0 {
                let slice = input.getSlice(at: input.readerIndex, length: runEnd)
                input.moveReaderIndex(forwardBy: runEnd)
                rebase(by: runEnd)
                if let slice { return .bytes(slice) }
            }
            if mode == .payload || runEnd == 0 {
                // Everything looked at is state now; the held-back size line stays in the input.
                let keep: Int
                switch state {
                case .size(_, _, let lineStart), .ext(_, let lineStart, _, _), .sizeLF(_, let lineStart, _):
                    keep = lineStart
                default:
                    keep = n
                }
                input.moveReaderIndex(forwardBy: keep)
                rebase(by: keep)
            }
            return .needMore
        }
    }

    /// A held-back size line is re-read from its start next time: the state goes back to `.sizeStart`.
    private mutating func rebase(by consumed: Int) {
        switch state {
        case .size, .ext, .sizeLF:
            state = .sizeStart
        default:
            break
        }
    }
}
