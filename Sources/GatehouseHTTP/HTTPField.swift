import NIOCore

/// Where one header field sits in a head's bytes: offsets from the start of the head (its `ByteBuffer`'s reader
/// index), the value without its surrounding optional whitespace, and the whole line including its CRLF (so a
/// field kept as it is can be copied with its line).
public struct HTTPField: Sendable, Equatable {
    public var nameStart: UInt32
    public var nameLength: UInt32
    public var valueStart: UInt32
    public var valueLength: UInt32
    /// One past the line's LF.
    public var lineEnd: UInt32

    @inlinable
    public init(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int, lineEnd: Int) {
        self.nameStart = UInt32(truncatingIfNeeded: nameStart)
        self.nameLength = UInt32(truncatingIfNeeded: nameLength)
        self.valueStart = UInt32(truncatingIfNeeded: valueStart)
        self.valueLength = UInt32(truncatingIfNeeded: valueLength)
        self.lineEnd = UInt32(truncatingIfNeeded: lineEnd)
    }

    @inlinable public var nameRange: Range<Int> { Int(nameStart)..<Int(nameStart + nameLength) }
    @inlinable public var valueRange: Range<Int> { Int(valueStart)..<Int(valueStart + valueLength) }
    @inlinable public var lineRange: Range<Int> { Int(nameStart)..<Int(lineEnd) }
}

/// Byte-level helpers shared by the request and response heads.
public enum HTTPBytes {
    /// RFC 9110 §5.6.2 tchar.
    @inlinable
    public static func isTokenByte(_ b: UInt8) -> Bool {
        tokenTable[Int(b)]
    }

    public static let tokenTable: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] = true }
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { t[Int(c)] = true }
        return t
    }()

    /// A field-value byte (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB.
    @inlinable
    public static func isFieldValueByte(_ b: UInt8) -> Bool {
        b >= 0x20 ? b != 0x7F : b == 0x09
    }

    /// ASCII case-insensitive comparison of bytes with a lower-case literal.
    @inlinable
    public static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for i in 0..<bytes.count {
            var b = bytes[i]
            if b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") { b += 32 }
            if b != l[i] { return false }
        }
        return true
    }

    /// Trims spaces and tabs at both ends.
    @inlinable
    public static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// Calls `body` with each comma-separated element of a list value (RFC 9110 §5.6.1), trimmed, empty ones
    /// skipped. Stops when `body` returns false.
    @inlinable
    public static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Bool) {
        var start = 0
        var i = 0
        while i <= value.count {
            if i == value.count || value[i] == UInt8(ascii: ",") {
                let element = trimmed(UnsafeRawBufferPointer(rebasing: value[start..<i]))
                if !element.isEmpty, !body(element) { return }
                start = i + 1
            }
            i += 1
        }
    }

    /// A decimal number of at most 18 digits (so it fits Int64), nothing else.
    @inlinable
    public static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var n: Int64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + Int64(b - 0x30)
        }
        return n
    }
}
