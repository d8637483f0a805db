import GatehouseCore
import NIOCore

/// Writes the request head an upstream receives, straight into one buffer: the request line with the
/// canonical path, the client's fields that the header rules keep (copied as the bytes of their lines; runs of
/// kept lines in one copy), then the fields Gatehouse writes itself (Host, X-Forwarded-*, X-Request-Id) and
/// the caller's additions (identity headers, an access token, framing, an upgrade).
public enum UpstreamRequestWriter {
    /// - `path`: the upstream's base path plus the canonical target (with its query).
    /// - `isOwnCookie`: Gatehouse's cookies, taken out of `Cookie` fields (nil: cookies pass untouched).
    /// - `extra`: fields appended last; their values must already be valid field values.
    public static func write(
        _ head: RequestHead, path: String, rules: HeaderRules, context: HeaderRules.ForwardContext,
        isOwnCookie: ((Substring) -> Bool)?, extra: [(String, String)], into out: inout ByteBuffer
    ) {
        out.reserveCapacity(out.writerIndex + head.size + path.utf8.count + 256)
        head.withBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.methodRange]))
            out.writeInteger(UInt8(ascii: " "))
            out.writeString(path)
            out.writeStaticString(" HTTP/1.1\r\n")
            var nominated: Set<String> = []
            for f in head.fields where f.nameLength == 10 {
                let name = UnsafeRawBufferPointer(rebasing: raw[f.nameRange])
                if HTTPBytes.equalsLowercase(name, "connection") {
                    HeaderRules.nominated(
                        byConnectionValue: UnsafeRawBufferPointer(rebasing: raw[f.valueRange]), into: &nominated)
                }
            }
            var forwardedFor: String?
            var forwardedProto: String?
            var forwardedHost: String?
            var run: Range<Int>?
            func flush() {
                if let r = run { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[r])) }
                run = nil
            }
            /// Kept as it is: joins the run of kept lines (copied in one write when the run ends).
            func keep(_ line: Range<Int>) {
                if let r = run, r.upperBound == line.lowerBound {
                    run = r.lowerBound..<line.upperBound
                } else {
                    flush()
                    run = line
                }
            }
            for f in head.fields {
                let disposition = rules.disposition(
                    ofRequestField: UnsafeRawBufferPointer(rebasing: raw[f.nameRange]),
                    peerTrusted: context.peerTrusted, dropAuthorization: context.dropAuthorization,
                    nominated: nominated)
                switch disposition {
                case .keep:
                    keep(f.lineRange)
                    continue
                case .cookie:
                    let value = UnsafeRawBufferPointer(rebasing: raw[f.valueRange])
                    let filtered = isOwnCookie.map { isOwn in
                        value.withMemoryRebound(to: UInt8.self) { Cookies.filtered($0, removing: isOwn) }
                    }
                    switch filtered {
                    case .none, .some(.none):
                        // No filter, or none of Gatehouse's cookies: the line as it is.
                        keep(f.lineRange)
                        continue
                    case .some(.some(nil)):
                        break  // only Gatehouse's cookies: the field goes
                    case .some(.some(let kept?)):
                        flush()
                        out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[f.nameRange]))
                        out.writeStaticString(": ")
                        out.writeString(kept)
                        out.writeStaticString("\r\n")
                        continue
                    }
                case .drop:
                    break
                case .forwardedFor:
                    let v = head.string(f.valueRange)
                    forwardedFor = forwardedFor.map { $0 + ", " + v } ?? v
                case .forwardedProto:
                    if forwardedProto == nil { forwardedProto = head.string(f.valueRange) }
                case .forwardedHost:
                    if forwardedHost == nil { forwardedHost = head.string(f.valueRange) }
                }
                flush()
            }
            flush()
            rules.forEachForwardingHeader(
                context: context, forwardedFor: forwardedFor, forwardedProto: forwardedProto,
                forwardedHost: forwardedHost
            ) { name, value in
                out.writeStaticString(name)
                out.writeStaticString(": ")
                out.writeString(value)
                out.writeStaticString("\r\n")
            }
        }
        for (name, value) in extra { writeField(name, value, into: &out) }
        out.writeStaticString("\r\n")
    }

    @inlinable
    public static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }
}
