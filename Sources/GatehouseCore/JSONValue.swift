/// A JSON value, parsed strictly (RFC 8259) from bytes: duplicate object keys, trailing data, lone surrogates,
/// control characters in strings and nesting deeper than `maxDepth` are errors. Used for token headers and
/// claims, where a lenient parser is an attack surface (two `alg` or `sub` members read differently by two
/// components).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Looks up a dotted path (`realm_access.roles`) through nested objects. A key containing dots is found
    /// first as a whole (`https://example.com/groups` style claim names).
    public func lookup(path: String) -> JSONValue? {
        guard let object = objectValue else { return nil }
        if let direct = object[path] { return direct }
        var current: JSONValue = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = current.objectValue?[String(part)] else { return nil }
            current = next
        }
        return current
    }

    /// Strings of a claim: a string gives one, an array gives its string (and number/bool) members.
    public var stringList: [String] {
        switch self {
        case .array(let items): return items.compactMap { $0.scalarText }
        default: return scalarText.map { [$0] } ?? []
        }
    }

    /// The text form of a scalar, for comparisons with configured values: strings as is, booleans as
    /// `true`/`false`, integral numbers without a fraction.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
            return String(n)
        default: return nil
        }
    }
}

public struct JSONParseError: Error, Sendable, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

extension JSONValue {
    /// Any byte collection: copied to an array in one step when its storage is contiguous (a generic per-byte
    /// copy is not specialised across modules and showed in the cache-miss profile), then parsed.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        try parse(bytes.withContiguousStorageIfAvailable { Array($0) } ?? Array(bytes), maxDepth: maxDepth)
    }

    public static func parse(_ array: [UInt8], maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: array, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == array.count else { throw JSONParseError("trailing data") }
        return value
    }
}

struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var index = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// `depth`: the containers around this value. At most `maxDepth` containers nest (the outermost is the first).
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw JSONParseError("unexpected end") }
        let byte = bytes[index]
        if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
            guard depth < maxDepth else { throw JSONParseError("nesting too deep") }
        }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw JSONParseError("unexpected character")
        }
    }

    mutating func expect(_ word: String) throws(JSONParseError) {
        for b in word.utf8 {
            guard index < bytes.count, bytes[index] == b else { throw JSONParseError("invalid literal") }
            index += 1
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var object: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw JSONParseError("expected key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw JSONParseError("expected ':'") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            guard object.updateValue(value, forKey: key) == nil else { throw JSONParseError("duplicate key") }
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw JSONParseError("expected ',' or '}'") }
            index += 1
            return .object(object)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw JSONParseError("expected ',' or ']'") }
            index += 1
            return .array(items)
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw JSONParseError("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if bytes[index] >= UInt8(ascii: "1") && bytes[index] <= UInt8(ascii: "9") {
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
        } else {
            throw JSONParseError("invalid number")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let digits = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            guard index > digits else { throw JSONParseError("invalid number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            let digits = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            guard index > digits else { throw JSONParseError("invalid number") }
        }
        guard index - start <= 64, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)),
            value.isFinite
        else { throw JSONParseError("invalid number") }
        return value
    }

    /// A string without escapes (nearly every key and value in a token) becomes a String straight from its
    /// bytes, validated once; one with an escape or an error takes the byte-by-byte path.
    mutating func parseString() throws(JSONParseError) -> String {
        let quote = index
        var i = index + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let text = bytes.withUnsafeBufferPointer {
                    String(validating: UnsafeBufferPointer(rebasing: $0[(quote + 1)..<i]), as: UTF8.self)
                }
                guard let text else { throw JSONParseError("invalid UTF-8") }
                index = i + 1
                return text
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            i += 1
        }
        return try parseEscapedString()
    }

    mutating func parseEscapedString() throws(JSONParseError) -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw JSONParseError("unterminated string") }
            let b = bytes[index]
            index += 1
            switch b {
            case UInt8(ascii: "\""):
                // Validate UTF-8 strictly: invalid sequences are an error, not a replacement character.
                guard let s = String(validating: out, as: UTF8.self) else { throw JSONParseError("invalid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw JSONParseError("unterminated string") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw JSONParseError("lone surrogate") }
                        index += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw JSONParseError("lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw JSONParseError("lone surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw JSONParseError("invalid escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw JSONParseError("invalid escape")
                }
            case 0..<0x20:
                throw JSONParseError("control character in string")
            default:
                out.append(b)
            }
        }
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw JSONParseError("invalid escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let h = CanonicalTarget.hexValue(bytes[index]) else { throw JSONParseError("invalid escape") }
            v = v << 4 | UInt32(h)
            index += 1
        }
        return v
    }
}
