import Foundation
import Logging
import NIOConcurrencyHelpers
import GatehouseCore
import Testing

@testable import GatehouseServer

@Suite struct AccessLogTests {
    func capture(_ format: AccessLogFormat) -> (AccessLog, NIOLockedValueBox<[String]>) {
        let lines = NIOLockedValueBox<[String]>([])
        let sink = LogSink { line in lines.withLockedValue { $0.append(line) } }
        let log = AccessLog(format: format) { label in StructuredLogHandler(label: label, format: format, sink: sink) }
        return (log, lines)
    }

    let entry = AccessLogEntry(
        requestID: "r1", client: "192.0.2.1", method: "GET", path: "/a \"b\"", route: "api", status: 403, bytes: 12,
        upstream: "127.0.0.1:3000", durationMicros: 1500, error: "forbidden", detail: "not in any allowed group",
        user: "alice")

    @Test func jsonLineHasEveryField() throws {
        let (log, lines) = capture(.json)
        log.record(entry)
        let all = lines.withLockedValue { $0 }
        #expect(all.count == 1 && all[0].hasSuffix("\n"))
        let obj = try JSONSerialization.jsonObject(with: Data(all[0].utf8)) as? [String: Any]
        #expect(obj?["logger"] as? String == "gatehouse.access")
        #expect(obj?["path"] as? String == "/a \"b\"")
        #expect(obj?["status"] as? String == "403")
        #expect(obj?["duration_ms"] as? String == "1.500")
        #expect(obj?["detail"] as? String == "not in any allowed group")
        for key in ["time", "request_id", "client", "method", "route", "bytes", "upstream", "error", "user"] {
            #expect(obj?[key] != nil, "missing \(key)")
        }
    }

    @Test func logfmtQuotesWhatNeedsIt() {
        let (log, lines) = capture(.logfmt)
        log.record(entry)
        let line = lines.withLockedValue { $0.first } ?? ""
        #expect(line.contains(#"path="/a \"b\"""#))
        #expect(line.contains("status=403"))
        #expect(line.contains(#"detail="not in any allowed group""#))
        #expect(!line.hasPrefix("{"))
    }

    @Test func offWritesNothing() {
        let (log, lines) = capture(.off)
        log.record(entry)
        #expect(lines.withLockedValue { $0.isEmpty })
    }
}
