import Foundation
import GatehouseCore
import Logging

/// One access-log record. Holds no header values, cookies, tokens or query strings.
struct AccessLogEntry {
    var requestID: String
    var client: String
    var method: String
    var path: String
    var route: String
    var status: Int
    var bytes: Int64
    var upstream: String
    var durationMicros: Int64
    var error: String?
    var detail: String?
    /// The authenticated user (the mapped `user` claim), never a credential.
    var user: String?
}

/// Writes one structured line per request through swift-log (`gatehouse.access`), metadata only.
struct AccessLog: Sendable {
    let logger: Logger?

    init(format: AccessLogFormat, makeHandler: @Sendable (String) -> LogHandler) {
        if format == .off {
            logger = nil
        } else {
            logger = Logger(label: "gatehouse.access", factory: makeHandler)
        }
    }

    /// False with `format: off`: callers skip building the entry.
    var isEnabled: Bool { logger != nil }

    func record(_ e: AccessLogEntry) {
        guard let logger else { return }
        var metadata: Logger.Metadata = [
            "request_id": .string(e.requestID),
            "client": .string(e.client),
            "method": .string(e.method),
            "path": .string(e.path),
            "route": .string(e.route),
            "status": .stringConvertible(e.status),
            "bytes": .stringConvertible(e.bytes),
            "upstream": .string(e.upstream),
            "duration_ms": .string(String(format: "%.3f", Double(e.durationMicros) / 1000)),
        ]
        if let error = e.error { metadata["error"] = .string(error) }
        if let detail = e.detail { metadata["detail"] = .string(detail) }
        if let user = e.user { metadata["user"] = .string(user) }
        logger.info("request", metadata: metadata)
    }
}

/// A swift-log handler that prints one JSON object (or one logfmt line) per record to standard output:
/// `time`, `level`, `logger`, `msg`, then the metadata keys in sorted order.
public struct StructuredLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: AccessLogFormat
    let sink: LogSink

    public init(label: String, format: AccessLogFormat, sink: LogSink = .standardOutput) {
        self.label = label
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = StructuredLogHandler.timestamp()
        var fields: [(String, String)] = [
            ("time", time), ("level", event.level.rawValue), ("logger", label), ("msg", event.message.description),
        ]
        for key in merged.keys.sorted() {
            fields.append((key, StructuredLogHandler.flatten(merged[key] ?? .string(""))))
        }
        let line: String
        switch format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(StructuredLogHandler.logfmtQuote($0.1))" }.joined(separator: " ")
        case .json, .off:
            line =
                "{" + fields.map { "\"\($0.0)\":\(StructuredLogHandler.jsonQuote($0.1))" }.joined(separator: ",") + "}"
        }
        sink.write(line + "\n")
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map { flatten($0) }.joined(separator: ",")
        case .dictionary(let d):
            return d.keys.sorted().map { "\($0)=\(flatten(d[$0] ?? .string("")))" }.joined(separator: ",")
        }
    }

    static func jsonQuote(_ s: String) -> String { JSONText.quote(s) }

    static func logfmtQuote(_ s: String) -> String {
        let needsQuotes =
            s.isEmpty || s.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.value < 0x20 }
        return needsQuotes ? jsonQuote(s) : s
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(tv.tv_usec / 1000))
    }
}

/// Where structured log lines go: standard output (serialised writes) or a closure (tests).
public struct LogSink: Sendable {
    let write: @Sendable (String) -> Void
    public init(write: @escaping @Sendable (String) -> Void) { self.write = write }
    /// One write(2) per line on file descriptor 1, so lines from different threads never interleave.
    public static let standardOutput = LogSink { line in
        var line = line
        line.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = Foundation.write(1, buf.baseAddress.map { $0 + offset }, buf.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
