import GatehouseCore
import GatehouseHTTP
import NIOCore
import NIOHTTP1

/// Writes a response Gatehouse produced itself (an error through the one mapping, a redirect, an endpoint's
/// answer) as HTTP/1.x bytes: status line, the response's fields, then Content-Type, Content-Length,
/// X-Request-Id, Set-Cookie and, when the connection ends, `Connection: close`.
enum LocalResponseWriter {
    struct Options {
        var versionMinor: Int
        var requestID: String
        var cookies: [String]
        var close: Bool
        /// HEAD: the head says how long the body would be, and no body follows.
        var omitBody: Bool
    }

    static func write(_ response: HTTPErrorResponse, options: Options, into out: inout ByteBuffer) {
        writeStatusLine(versionMinor: options.versionMinor, status: response.status, into: &out)
        for (name, value) in response.headers { writeField(name, value, into: &out) }
        writeField("Content-Type", response.contentType, into: &out)
        writeField("Content-Length", String(response.body.utf8.count), into: &out)
        writeField("X-Request-Id", options.requestID, into: &out)
        for cookie in options.cookies { writeField("Set-Cookie", cookie, into: &out) }
        if options.close {
            out.writeStaticString("Connection: close\r\n")
        } else if options.versionMinor == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        if !options.omitBody { out.writeString(response.body) }
    }

    static func writeStatusLine(versionMinor: Int, status: Int, into out: inout ByteBuffer) {
        out.writeStaticString(versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString(String(status))
        out.writeInteger(UInt8(ascii: " "))
        out.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        out.writeStaticString("\r\n")
    }

    /// A field whose value would break the framing (CR, LF, NUL) is left out rather than written.
    static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        guard RequestValidation.isValidFieldValue(value) else { return }
        UpstreamRequestWriter.writeField(name, value, into: &out)
    }
}
