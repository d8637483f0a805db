import NIOCore

/// A request head as byte ranges over the bytes it arrived in (HTTP/1.1), or over bytes written for it (an HTTP/2
/// stream's HEADERS, mapped by the HTTP/2 edge). Nothing is decoded into strings until a phase asks for it, and a
/// field kept for the upstream is copied as the bytes of its line.
public struct RequestHead: Sendable {
    /// The head's bytes, reader index at its first byte.
    public var bytes: ByteBuffer
    public var methodRange: Range<Int>
    public var targetRange: Range<Int>
    /// 1.0, 1.1, or 2.0 for an HTTP/2 stream.
    public var versionMajor: Int
    public var versionMinor: Int
    public var fields: [HTTPField]

    public init(
        bytes: ByteBuffer, methodRange: Range<Int>, targetRange: Range<Int>, versionMajor: Int, versionMinor: Int,
        fields: [HTTPField]
    ) {
        self.bytes = bytes
        self.methodRange = methodRange
        self.targetRange = targetRange
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.fields = fields
    }

    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeReadableBytes(body)
    }

    @inlinable
    public func string(_ range: Range<Int>) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    public var method: String { string(methodRange) }
    public var target: String { string(targetRange) }
    public func name(_ i: Int) -> String { string(fields[i].nameRange) }
    public func value(_ i: Int) -> String { string(fields[i].valueRange) }

    /// The index of the first field whose name equals `lower` (ASCII case-insensitively).
    @inlinable
    public func firstIndex(of lower: StaticString) -> Int? {
        withBytes { raw in
            for (i, f) in fields.enumerated()
            where HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]), lower) {
                return i
            }
            return nil
        }
    }

    /// The value of the first field named `lower`, as a string.
    public func firstValue(_ lower: StaticString) -> String? {
        firstIndex(of: lower).map(value)
    }

    /// Every field as strings (for the pure rules that take `HeaderFields`, and for tests).
    public var stringFields: [(name: String, value: String)] {
        fields.indices.map { (name: name($0), value: value($0)) }
    }

    /// The head's size as the limits count it: request line and fields with their line ends.
    public var size: Int { bytes.readableBytes }
}
