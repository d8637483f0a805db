import NIOCore

/// Parses HTTP/1.1 request heads (RFC 9112) from a connection's bytes, strictly: what it accepts, an upstream
/// can only read one way.
///
/// - The request line is `method SP request-target SP HTTP-version CRLF` with exactly one space between the
///   parts, a token method, a target of visible ASCII, and `HTTP/1.1` or `HTTP/1.0`. Empty lines before it
///   (a CRLF left after a previous body) are skipped.
/// - A field line is `token ":" OWS value OWS CRLF`: no whitespace before the colon (§5.1), no line folding
///   (§5.2), no bare CR or LF anywhere (§2.2), and a value of VCHAR, obs-text, SP and HTAB only.
/// - The head (request line to the empty line) is at most `maxBytes` and has at most `maxFields` fields, else
///   `.tooLarge` / `.tooManyFields` (431).
///
/// Incremental: a partial head is kept in the caller's buffer, and the parser remembers how far it has looked,
/// so a head that arrives in many small reads is scanned once.
public struct RequestHeadParser: Sendable {
    public enum Failure: Error, Sendable, Equatable {
        case tooLarge
        case tooManyFields
        case malformed(String)
        case unsupportedVersion
    }

    public enum Result: Sendable {
        case needMore
        case head(RequestHead)
        case failure(Failure)
    }

    public let maxBytes: Int
    public let maxFields: Int
    /// Readable bytes already searched for the end of the head without finding it.
    private var scanned = 0
    /// Empty lines skipped before the current request line.
    private var skippedLines = 0

    public init(maxBytes: Int, maxFields: Int) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
    }

    /// Takes one head off the front of `buffer` when it is complete (the head's bytes become the returned head's
    /// storage, a slice: no copy); leaves `buffer` as it is otherwise.
    public mutating func parse(_ buffer: inout ByteBuffer) -> Result {
        // Empty lines before a request line are skipped (RFC 9112 §2.2), a bounded number per request however
        // the bytes arrive: the count survives calls (before, each read could skip 8 more; the request-head fuzz
        // target checks that a head parses the same whole and in pieces).
        while skippedLines < 8, buffer.readableBytes >= 2,
            buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A
        {
            buffer.moveReaderIndex(forwardBy: 2)
            skippedLines += 1
            scanned = 0
        }
        switch Self.takeHead(&buffer, scanned: &scanned, maxBytes: maxBytes) {
        case .needMore: return .needMore
        case .failure(let f): return .failure(f)
        case .head(let slice):
            skippedLines = 0
            return parseComplete(slice)
        }
    }

    enum Taken {
        case needMore
        case failure(Failure)
        case head(ByteBuffer)
    }

    /// The complete head at the front of `buffer` as a slice (request and response heads alike), remembering in
    /// `scanned` how far an incomplete one was searched.
    static func takeHead(_ buffer: inout ByteBuffer, scanned: inout Int, maxBytes: Int) -> Taken {
        let from = scanned
        let found: Int? = buffer.withUnsafeReadableBytes { raw -> Int? in
            Self.endOfHead(raw, from: max(0, from - 3))
        }
        guard let end = found else {
            let from = max(0, scanned - 1)
            scanned = buffer.readableBytes
            if buffer.readableBytes > maxBytes { return .failure(.tooLarge) }
            // A bare LF or CR is an error now, not after waiting for a terminator that never comes (only the
            // bytes not looked at before are scanned).
            if let problem = buffer.withUnsafeReadableBytes({ Self.bareLineEnd($0, from: from) }) {
                return .failure(problem)
            }
            return .needMore
        }
        scanned = 0
        guard end <= maxBytes else { return .failure(.tooLarge) }
        guard let slice = buffer.readSlice(length: end) else { return .needMore }
        return .head(slice)
    }

    /// The offset one past the `\r\n\r\n` that ends the head, searching from `start`.
    @usableFromInline
    static func endOfHead(_ raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard raw.count >= 4 else { return nil }
        var i = start
        let last = raw.count - 4
        while i <= last {
            // Look for LF at i+3, the most selective position.
            if raw[i + 3] == 0x0A {
                if raw[i] == 0x0D, raw[i + 1] == 0x0A, raw[i + 2] == 0x0D { return i + 4 }
                i += 1
            } else if raw[i + 3] == 0x0D {
                i += 1
            } else {
                i += 4
            }
        }
        return nil
    }

    static func bareLineEnd(_ raw: UnsafeRawBufferPointer, from start: Int) -> Failure? {
        for i in start..<raw.count {
            if raw[i] == 0x0A, i == 0 || raw[i - 1] != 0x0D { return .malformed("bare LF") }
            if raw[i] == 0x0D, i + 1 < raw.count, raw[i + 1] != 0x0A { return .malformed("bare CR") }
        }
        return nil
    }

    func parseComplete(_ head: ByteBuffer) -> Result {
        head.withUnsafeReadableBytes { raw -> Result in
            let count = raw.count
            var i = 0
            // method
            while i < count, HTTPBytes.isTokenByte(raw[i]) { i += 1 }
            guard i > 0, i < count, raw[i] == 0x20 else { return .failure(.malformed("invalid method")) }
            let method = 0..<i
            i += 1
            // request-target: visible ASCII
            let targetStart = i
            while i < count, raw[i] > 0x20, raw[i] < 0x7F { i += 1 }
            guard i > targetStart, i < count, raw[i] == 0x20 else {
                return .failure(.malformed("invalid request target"))
            }
            let target = targetStart..<i
            i += 1
            // HTTP-version CRLF
            guard i + 10 <= count, raw[i] == UInt8(ascii: "H"), raw[i + 1] == UInt8(ascii: "T"),
                raw[i + 2] == UInt8(ascii: "T"), raw[i + 3] == UInt8(ascii: "P"), raw[i + 4] == UInt8(ascii: "/"),
                raw[i + 6] == UInt8(ascii: "."), raw[i + 8] == 0x0D, raw[i + 9] == 0x0A
            else { return .failure(.malformed("invalid HTTP version")) }
            let major = raw[i + 5]
            let minor = raw[i + 7]
            guard (0x30...0x39).contains(major), (0x30...0x39).contains(minor) else {
                return .failure(.malformed("invalid HTTP version"))
            }
            guard major == UInt8(ascii: "1"), minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
                return .failure(.unsupportedVersion)
            }
            i += 10
            var fields: [HTTPField] = []
            fields.reserveCapacity(12)
            switch Self.parseFields(raw, from: i, maxFields: maxFields, into: &fields) {
            case .failure(let f): return .failure(f)
            case .ok: break
            }
            return .head(
                RequestHead(
                    bytes: head, methodRange: method, targetRange: target, versionMajor: 1,
                    versionMinor: Int(minor - 0x30), fields: fields))
        }
    }

    enum FieldsOutcome {
        case ok
        case failure(Failure)
    }

    /// Field lines from `start` to the empty line that ends the block (which must be the last two bytes).
    /// Shared by request and response heads.
    static func parseFields(
        _ raw: UnsafeRawBufferPointer, from start: Int, maxFields: Int, into fields: inout [HTTPField]
    ) -> FieldsOutcome {
        let count = raw.count
        var i = start
        while true {
            guard i + 1 < count else { return .failure(.malformed("truncated header")) }
            if raw[i] == 0x0D {
                guard raw[i + 1] == 0x0A, i + 2 == count else { return .failure(.malformed("bare CR")) }
                return .ok
            }
            if raw[i] == 0x20 || raw[i] == 0x09 { return .failure(.malformed("obsolete line folding")) }
            let nameStart = i
            while i < count, HTTPBytes.isTokenByte(raw[i]) { i += 1 }
            guard i < count, raw[i] == UInt8(ascii: ":") else {
                if i < count, raw[i] == 0x20 || raw[i] == 0x09 {
                    return .failure(.malformed("whitespace before colon"))
                }
                return .failure(.malformed("invalid header name"))
            }
            guard i > nameStart else { return .failure(.malformed("empty header name")) }
            let nameLength = i - nameStart
            i += 1
            while i < count, raw[i] == 0x20 || raw[i] == 0x09 { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < count {
                let b = raw[i]
                if b == 0x0D { break }
                guard HTTPBytes.isFieldValueByte(b) else {
                    return .failure(.malformed(b == 0x0A ? "bare LF" : "invalid header value"))
                }
                i += 1
                if b != 0x20 && b != 0x09 { valueEnd = i }
            }
            guard i + 1 < count, raw[i + 1] == 0x0A else { return .failure(.malformed("bare CR")) }
            i += 2
            guard fields.count < maxFields else { return .failure(.tooManyFields) }
            fields.append(
                HTTPField(
                    nameStart: nameStart, nameLength: nameLength, valueStart: valueStart,
                    valueLength: valueEnd - valueStart, lineEnd: i))
        }
    }
}
