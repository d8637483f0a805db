import GatehouseCore
import NIOCore

/// Writes the response head a client receives from an upstream's head, straight into one buffer: the status
/// line in the client's version, the upstream's fields minus what must not pass (hop-by-hop and
/// `Connection`-nominated fields, `X-Request-Id`, Gatehouse's own `Set-Cookie`, and `Cache-Control` when
/// Gatehouse sets cookies), copied as the bytes of their lines; then Gatehouse's fields.
public enum ClientResponseWriter {
    public struct Options {
        public var versionMinor: Int
        public var requestID: String
        /// Set-Cookie values Gatehouse adds (a refreshed or cleared session); with any, `Cache-Control: no-store`.
        public var cookies: [String]
        /// Gatehouse's cookie names: an upstream may not set, overwrite or delete them (nil: no login).
        public var isOwnCookie: ((Substring) -> Bool)?
        /// The body is re-framed as chunked for this client (a close-delimited upstream body, HTTP/1.1).
        public var chunked: Bool
        /// `Connection: close` (the connection ends after this response); else HTTP/1.0 gets `keep-alive`.
        public var close: Bool

        public init(
            versionMinor: Int, requestID: String, cookies: [String], isOwnCookie: ((Substring) -> Bool)?,
            chunked: Bool, close: Bool
        ) {
            self.versionMinor = versionMinor
            self.requestID = requestID
            self.cookies = cookies
            self.isOwnCookie = isOwnCookie
            self.chunked = chunked
            self.close = close
        }
    }

    /// What the filter did that the caller may want to log.
    public struct Report: Equatable {
        public var droppedOwnCookie = false
    }

    /// What becomes of one upstream response field on its way to the client.
    public enum Disposition: Equatable {
        case keep, drop, setCookie
    }

    /// The rule for one response field name (its bytes). `nominated`: names the response's `Connection` fields
    /// nominate (normalised); `replacesCacheControl`: Gatehouse writes its own `Cache-Control`.
    public static func disposition(
        of name: UnsafeRawBufferPointer, nominated: Set<String>, replacesCacheControl: Bool
    ) -> Disposition {
        switch name.count {
        case 2 where HTTPBytes.equalsLowercase(name, "te"): return .drop
        case 7 where HTTPBytes.equalsLowercase(name, "trailer") || HTTPBytes.equalsLowercase(name, "upgrade"):
            return .drop
        case 10:
            if HTTPBytes.equalsLowercase(name, "connection") || HTTPBytes.equalsLowercase(name, "keep-alive") {
                return .drop
            }
            if HTTPBytes.equalsLowercase(name, "set-cookie") { return .setCookie }
        case 12 where HTTPBytes.equalsLowercase(name, "x-request-id"): return .drop
        case 13 where replacesCacheControl && HTTPBytes.equalsLowercase(name, "cache-control"): return .drop
        case 17 where HTTPBytes.equalsLowercase(name, "transfer-encoding"): return .drop
        default: break
        }
        if name.count > 6, HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: name[0..<6]), "proxy-") {
            return .drop
        }
        if !nominated.isEmpty, nominated.contains(HeaderRules.normalise(bytes: name)) { return .drop }
        return .keep
    }

    @discardableResult
    public static func write(_ head: ResponseHead, options: Options, into out: inout ByteBuffer) -> Report {
        out.reserveCapacity(out.writerIndex + head.bytes.readableBytes + 128)
        let report = head.withBytes { raw in
            out.writeStaticString(options.versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            // Status code and reason as the upstream wrote them (bytes 9 up to the first line end).
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[9..<(head.reasonRange.upperBound)]))
            out.writeStaticString("\r\n")
            var run: Range<Int>?
            func flush() {
                if let r = run { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[r])) }
                run = nil
            }
            let report = forEachField(
                of: head, replacesCacheControl: !options.cookies.isEmpty, isOwnCookie: options.isOwnCookie
            ) { f, kept in
                guard kept else { return flush() }
                let line = f.lineRange
                if let r = run, r.upperBound == line.lowerBound {
                    run = r.lowerBound..<line.upperBound
                } else {
                    flush()
                    run = line
                }
            }
            flush()
            return report
        }
        writeGatehouseFields(options, into: &out)
        out.writeStaticString("\r\n")
        return report
    }

    /// Calls `body` with each of the upstream's fields, in order, and whether it passes to the client (the one
    /// filter behind the HTTP/1.1 bytes and the HTTP/2 header block).
    public static func forEachField(
        of head: ResponseHead, replacesCacheControl: Bool, isOwnCookie: ((Substring) -> Bool)?,
        _ body: (HTTPField, Bool) -> Void
    ) -> Report {
        var report = Report()
        head.withBytes { raw in
            var nominated: Set<String> = []
            for f in head.fields where f.nameLength == 10 {
                if HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]), "connection") {
                    HeaderRules.nominated(
                        byConnectionValue: UnsafeRawBufferPointer(rebasing: raw[f.valueRange]), into: &nominated)
                }
            }
            for f in head.fields {
                let name = UnsafeRawBufferPointer(rebasing: raw[f.nameRange])
                var d = disposition(of: name, nominated: nominated, replacesCacheControl: replacesCacheControl)
                if d == .setCookie {
                    d = .keep
                    if let isOwn = isOwnCookie {
                        let value = head.string(f.valueRange)
                        let cookieName = Substring(value.prefix { $0 != "=" && $0 != ";" }).trimmingSpaces()
                        if isOwn(cookieName) {
                            d = .drop
                            report.droppedOwnCookie = true
                        }
                    }
                }
                body(f, d == .keep)
            }
        }
        return report
    }

    /// The fields Gatehouse adds to every relayed response (without the blank line).
    static func writeGatehouseFields(_ options: Options, into out: inout ByteBuffer) {
        out.writeStaticString("X-Request-Id: ")
        out.writeString(options.requestID)
        out.writeStaticString("\r\n")
        for cookie in options.cookies {
            out.writeStaticString("Set-Cookie: ")
            out.writeString(cookie)
            out.writeStaticString("\r\n")
        }
        if !options.cookies.isEmpty { out.writeStaticString("Cache-Control: no-store\r\n") }
        if options.chunked { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if options.close {
            out.writeStaticString("Connection: close\r\n")
        } else if options.versionMinor == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
    }
}

/// Chunk framing for bodies Gatehouse re-frames (RFC 9112 §7.1).
public enum ChunkEncoding {
    /// Writes `size CRLF`, the data, `CRLF`.
    public static func writeChunk(_ data: ByteBuffer, into out: inout ByteBuffer) {
        guard data.readableBytes > 0 else { return }
        writeSizeLine(data.readableBytes, into: &out)
        var data = data
        out.writeBuffer(&data)
        out.writeStaticString("\r\n")
    }

    public static func writeSizeLine(_ size: Int, into out: inout ByteBuffer) {
        out.writeString(String(size, radix: 16))
        out.writeStaticString("\r\n")
    }

    /// The last chunk, without trailers.
    public static func writeLast(into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n\r\n")
    }
}
