import GatehouseCore
import GatehouseHTTP
import NIOCore

/// Request targets, the two request validations and JSON.
enum CoreTargets {
    /// A canonical target is one routing can trust: absolute, no dot segment, no empty segment, nothing a
    /// backend could read as another path, and a fixed point of canonicalisation.
    static func checkCanonical(_ t: CanonicalTarget) throws(PropertyViolation) {
        let path = t.path
        try require(path.hasPrefix("/"), "canonical path \(path.debugDescription) is not absolute")
        try require(!path.contains("//"), "canonical path \(path.debugDescription) has an empty segment")
        for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            try require(segment != "." && segment != "..", "canonical path \(path.debugDescription) has a dot segment")
        }
        try require(
            path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "#") },
            "canonical path \(path.debugDescription) has a byte a backend could read differently")
        guard let again = try? CanonicalTarget.parse(t.forwardTarget) else {
            throw PropertyViolation("canonical target \(t.forwardTarget.debugDescription) is refused when parsed again")
        }
        // The same path and query; the flags that make a route refuse it may only be dropped by a second pass
        // (`/%2F/..` loses its encoded slash with its segment), never gained.
        try require(
            again.path == t.path && again.query == t.query && (!again.hasEncodedSlash || t.hasEncodedSlash)
                && (!again.hasDoubleEncoding || t.hasDoubleEncoding),
            "canonicalising \(t) again gives \(again)")
    }

    /// Properties: an accepted target is canonical (see `checkCanonical`); the target as the proxy forwards it
    /// has the path routing matched; an absolute-form target reduces to the same canonical target.
    static func target(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let text = String(decoding: data, as: UTF8.self)
        guard let t = try? CanonicalTarget.parse(text) else { return }
        try checkCanonical(t)
        if text.hasPrefix("/") {
            let absolute = try? RequestValidation.canonicalTarget("http://example.com" + text, host: "example.com")
            try require(absolute == t, "absolute-form \(text.debugDescription) canonicalises differently")
        }
    }

    /// Properties: the byte-level validation of an HTTP/1 head (`RequestHead.validate`) and the field-list
    /// validation the HTTP/2 edge uses (`RequestValidation.validate`) accept the same heads and read them the
    /// same way; an accepted request is framed one way only.
    static func validation(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        var parser = RequestHeadParser(maxBytes: 16 * 1024, maxFields: 64)
        var buffer = ByteBuffer(bytes: data)
        guard case .head(let h) = parser.parse(&buffer) else { return }
        // The field list holds Strings: bytes that are not UTF-8 (obs-text) become U+FFFD, three bytes each, so
        // its size is not the head's (a find: 5,592 bytes as sent, 9,896 as text). HTTP/2 hands Gatehouse text
        // already, so only a head that is UTF-8 compares under the real limit; any other compares under a limit
        // neither size reaches (the parser stops at 16 KiB; text is at most 3 times that).
        let isText = String(validating: Array(h.bytes.readableBytesView), as: UTF8.self) != nil
        let limit = isText ? 8 * 1024 : 64 * 1024
        let bytes = try? h.validate(maxHeaderBytes: limit)
        let fields = try? RequestValidation.validate(
            head: .init(method: h.method, target: h.target, versionMajor: h.versionMajor, versionMinor: h.versionMinor),
            headers: h.stringFields, maxHeaderBytes: limit)
        try require(
            bytes == fields,
            "byte-level validation: \(bytes.map { "\($0)" } ?? "refused"); field-list: \(fields.map { "\($0)" } ?? "refused")"
        )
        if let outcome = bytes {
            try checkCanonical(outcome.target)
            try require(!(outcome.chunked && outcome.contentLength != nil), "both chunked and Content-Length")
        }
    }

    static func depth(_ value: JSONValue) -> Int {
        switch value {
        case .array(let items): return 1 + (items.map(depth).max() ?? 0)
        case .object(let members): return 1 + (members.values.map(depth).max() ?? 0)
        default: return 0
        }
    }

    /// Properties: what the parser accepts it reads to a value that, serialised again (as sessions are stored),
    /// parses to itself; the nesting limit holds.
    static func json(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        guard let value = try? JSONValue.parse(Array(data), maxDepth: 16) else { return }
        try require(depth(value) <= 16, "nesting deeper than the limit was accepted")
        let text = value.serialized
        let again = try? JSONValue.parse(Array(text.utf8), maxDepth: 16)
        try require(again == value, "\(text.debugDescription) does not parse back to the same value")
    }
}
