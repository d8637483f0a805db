import GatehouseCore
import GatehouseHTTP
import NIOCore
import NIOHPACK
import NIOHTTP2

/// HTTP/2 header blocks to and from the engine's heads (RFC 9113 §8.3), without an HTTP/1 round trip: a
/// stream's HEADERS become a `RequestHead` over bytes written for it (the same phases and rules then apply),
/// and an upstream's response head becomes the client's HEADERS through the same field filter as HTTP/1.1.
enum HTTP2Mapping {
    /// Methods whose requests carry no body unless a Content-Length says so.
    static func isBodyless(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT": return true
        default: return false
        }
    }

    /// The request head for a stream's header block. NIOHTTP2 has already checked the block's shape (pseudo-
    /// header order and set, lower-case names, no connection-specific fields); this refuses values an HTTP/1.1
    /// upstream could not receive as they are (control bytes, edge whitespace) and fills in `host` from
    /// `:authority`. A body-carrying method whose HEADERS end the stream gets `content-length: 0`, so the upstream
    /// sees a request without a body rather than an empty chunked one. More than `maxFields` regular fields
    /// (`limits.max_header_count`, as on HTTP/1; cookie crumbs not counted) is 431.
    static func requestHead(
        _ headers: HPACKHeaders, endStream: Bool, maxFields: Int = 100
    ) throws(GatehouseError) -> RequestHead {
        var method: String?
        var path: String?
        var authority: String?
        var hasHost = false
        var hasLength = false
        var size = 0
        var regular = 0
        var crumbs = 0
        for (name, value, _) in headers {
            size += name.utf8.count + value.utf8.count + 4
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                case ":scheme": break
                default: throw .badRequest("unknown pseudo-header")
                }
                continue
            }
            if name == "host" { hasHost = true }
            if name == "content-length" { hasLength = true }
            if name == "cookie" {
                crumbs += 1  // cookie crumbs (RFC 9113 §8.2.3) are one field
            } else {
                regular += 1
            }
        }
        if regular > maxFields { throw .tooManyHeaderFields(limit: maxFields) }
        guard let method, let path, !path.isEmpty else { throw .badRequest("missing :method or :path") }
        var bytes = ByteBufferAllocator().buffer(capacity: size + method.utf8.count + path.utf8.count + 64)
        bytes.writeString(method)
        let methodRange = 0..<bytes.writerIndex
        bytes.writeString(path)
        let targetRange = methodRange.upperBound..<bytes.writerIndex
        guard isAcceptable(method, allowSpace: false), isAcceptable(path, allowSpace: false) else {
            throw .badRequest("invalid :method or :path")
        }
        var fields: [HTTPField] = []
        fields.reserveCapacity(headers.count + 1)
        func append(_ name: String, _ value: String) throws(GatehouseError) {
            guard isAcceptable(value, allowSpace: true) else { throw .badRequest("invalid header value") }
            let nameStart = bytes.writerIndex
            bytes.writeString(name)
            let nameLength = bytes.writerIndex - nameStart
            bytes.writeStaticString(": ")
            let valueStart = bytes.writerIndex
            bytes.writeString(value)
            let valueLength = bytes.writerIndex - valueStart
            bytes.writeStaticString("\r\n")
            fields.append(
                HTTPField(
                    nameStart: nameStart, nameLength: nameLength, valueStart: valueStart, valueLength: valueLength,
                    lineEnd: bytes.writerIndex))
        }
        if !hasHost, let authority { try append("host", authority) }
        // Cookie crumbs become one field joined with "; " (RFC 9113 §8.2.3): an HTTP/1.1 upstream may read only
        // one Cookie field. The joined field takes the place of the first crumb.
        var cookies: String?
        var cookieCount = 0
        if crumbs > 1 {
            for (name, value, _) in headers where name == "cookie" {
                guard isAcceptable(value, allowSpace: true) else { throw .badRequest("invalid header value") }
                cookies = cookies.map { $0 + "; " + value } ?? value
            }
        }
        for (name, value, _) in headers where name.utf8.first != UInt8(ascii: ":") {
            if let joined = cookies, name == "cookie" {
                cookieCount += 1
                if cookieCount == 1 { try append(name, joined) }
                continue
            }
            try append(name, value)
        }
        if endStream, !hasLength, !isBodyless(method) { try append("content-length", "0") }
        return RequestHead(
            bytes: bytes, methodRange: methodRange, targetRange: targetRange, versionMajor: 2, versionMinor: 0,
            fields: fields)
    }

    /// Field-value bytes only (RFC 9110 §5.5), no leading or trailing whitespace (RFC 9113 §8.2.1).
    static func isAcceptable(_ value: String, allowSpace: Bool) -> Bool {
        let utf8 = value.utf8
        if let first = utf8.first, first == 0x20 || first == 0x09 { return false }
        if let last = utf8.last, last == 0x20 || last == 0x09 { return false }
        return utf8.allSatisfy { HTTPBytes.isFieldValueByte($0) && (allowSpace || ($0 != 0x20 && $0 != 0x09)) }
    }

    /// The client's HEADERS for an upstream response: `:status`, the fields the response filter keeps (names
    /// in lower case, as HTTP/2 requires), then Gatehouse's own.
    static func responseHeaders(
        _ head: ResponseHead, requestID: String, cookies: [String], isOwnCookie: ((Substring) -> Bool)?
    ) -> (HPACKHeaders, ClientResponseWriter.Report) {
        var out = HPACKHeaders()
        out.reserveCapacity(head.fields.count + 3 + cookies.count)
        out.add(name: ":status", value: String(head.status))
        let report = head.withBytes { raw in
            ClientResponseWriter.forEachField(
                of: head, replacesCacheControl: !cookies.isEmpty, isOwnCookie: isOwnCookie
            ) { field, kept in
                guard kept else { return }
                out.add(
                    name: lowercased(UnsafeRawBufferPointer(rebasing: raw[field.nameRange])),
                    value: head.string(field.valueRange))
            }
        }
        addGatehouseFields(to: &out, requestID: requestID, cookies: cookies)
        return (out, report)
    }

    /// The client's HEADERS for a local answer.
    static func answerHeaders(_ response: HTTPErrorResponse, requestID: String, cookies: [String]) -> HPACKHeaders {
        var out = HPACKHeaders()
        out.reserveCapacity(response.headers.count + 4 + cookies.count)
        out.add(name: ":status", value: String(response.status))
        for (name, value) in response.headers where RequestValidation.isValidFieldValue(value) {
            out.add(name: name.lowercased(), value: value)
        }
        out.add(name: "content-type", value: response.contentType)
        out.add(name: "content-length", value: String(response.body.utf8.count))
        out.add(name: "x-request-id", value: requestID)
        for cookie in cookies { out.add(name: "set-cookie", value: cookie) }
        return out
    }

    private static func addGatehouseFields(to out: inout HPACKHeaders, requestID: String, cookies: [String]) {
        out.add(name: "x-request-id", value: requestID)
        for cookie in cookies { out.add(name: "set-cookie", value: cookie) }
        if !cookies.isEmpty { out.add(name: "cache-control", value: "no-store") }
    }

    static func lowercased(_ name: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: name.count) { buffer in
            for i in 0..<name.count {
                let b = name[i]
                buffer[i] = (b >= 0x41 && b <= 0x5A) ? b + 32 : b
            }
            return name.count
        }
    }
}
