import NIOCore

/// An upstream's response head as byte ranges over the bytes it arrived in.
public struct ResponseHead: Sendable {
    public var bytes: ByteBuffer
    public var versionMinor: Int
    public var status: Int
    /// The reason phrase (may be empty).
    public var reasonRange: Range<Int>
    public var fields: [HTTPField]

    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeReadableBytes(body)
    }

    public func string(_ range: Range<Int>) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    public func name(_ i: Int) -> String { string(fields[i].nameRange) }
    public func value(_ i: Int) -> String { string(fields[i].valueRange) }
    public var stringFields: [(name: String, value: String)] {
        fields.indices.map { (name: name($0), value: value($0)) }
    }
}

/// Parses an upstream's response head (RFC 9112 §4) with the same field-line rules as requests. The status
/// line is `HTTP/1.x SP 3DIGIT [SP reason] CRLF`; a missing reason phrase (`HTTP/1.1 200\r\n`) is accepted, as
/// servers send it.
public struct ResponseHeadParser: Sendable {
    public enum Result: Sendable {
        case needMore
        case head(ResponseHead)
        case failure(RequestHeadParser.Failure)
    }

    public let maxBytes: Int
    public let maxFields: Int
    private var scanned = 0

    public init(maxBytes: Int, maxFields: Int) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
    }

    public mutating func parse(_ buffer: inout ByteBuffer) -> Result {
        switch RequestHeadParser.takeHead(&buffer, scanned: &scanned, maxBytes: maxBytes) {
        case .needMore: return .needMore
        case .failure(let f): return .failure(f)
        case .head(let slice): return parseComplete(slice)
        }
    }

    func parseComplete(_ head: ByteBuffer) -> Result {
        head.withUnsafeReadableBytes { raw -> Result in
            let count = raw.count
            guard count >= 14, raw[0] == UInt8(ascii: "H"), raw[1] == UInt8(ascii: "T"), raw[2] == UInt8(ascii: "T"),
                raw[3] == UInt8(ascii: "P"), raw[4] == UInt8(ascii: "/"), raw[5] == UInt8(ascii: "1"),
                raw[6] == UInt8(ascii: "."), raw[7] == UInt8(ascii: "0") || raw[7] == UInt8(ascii: "1"),
                raw[8] == 0x20
            else { return .failure(.malformed("invalid status line")) }
            var status = 0
            for k in 9..<12 {
                let d = raw[k]
                guard d >= 0x30 && d <= 0x39 else { return .failure(.malformed("invalid status code")) }
                status = status * 10 + Int(d - 0x30)
            }
            guard status >= 100 else { return .failure(.malformed("invalid status code")) }
            var i = 12
            var reason = 12..<12
            if raw[i] == 0x20 {
                i += 1
                let start = i
                while i < count, raw[i] != 0x0D {
                    guard HTTPBytes.isFieldValueByte(raw[i]) else {
                        return .failure(.malformed(raw[i] == 0x0A ? "bare LF" : "invalid reason phrase"))
                    }
                    i += 1
                }
                reason = start..<i
            }
            guard i + 1 < count, raw[i] == 0x0D, raw[i + 1] == 0x0A else {
                return .failure(.malformed("invalid status line"))
            }
            i += 2
            var fields: [HTTPField] = []
            fields.reserveCapacity(12)
            switch RequestHeadParser.parseFields(raw, from: i, maxFields: maxFields, into: &fields) {
            case .failure(let f): return .failure(f)
            case .ok: break
            }
            return .head(
                ResponseHead(
                    bytes: head, versionMinor: Int(raw[7] - 0x30), status: status, reasonRange: reason, fields: fields))
        }
    }
}
