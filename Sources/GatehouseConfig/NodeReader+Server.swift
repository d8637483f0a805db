import GatehouseCore
import Yams

/// `server:` and its sub-sections. Absent or null keys keep the defaults of `ServerConfig.init`.
extension NodeReader {
    static let serverKeys: Set<String> = [
        "listen", "admin_listen", "workers", "trusted_proxies", "limits", "timeouts", "access_log", "upstream", "tls",
        "http2",
    ]
    static let limitsKeys: Set<String> = [
        "max_header_bytes", "max_body_bytes", "max_header_count", "max_connections", "max_connections_per_client",
    ]
    static let timeoutsKeys: Set<String> = [
        "request_header", "idle", "upstream_connect", "upstream_response", "shutdown_grace",
    ]
    static let accessLogKeys: Set<String> = ["format"]
    static let upstreamKeys: Set<String> = ["max_idle_per_loop", "max_connections_per_loop", "queue_timeout"]

    /// Bounds of `limits.max_header_bytes`: below 1 KiB ordinary browsers fail, above 1 MiB it is no guard.
    static let headerBytesRange: ClosedRange<Int64> = 1024...(1 << 20)

    mutating func readServer(_ node: Node, path: String) -> ServerConfig {
        var config = ServerConfig()
        guard let fields = readMapping(node, path: path, section: .server, known: Self.serverKeys) else {
            return config
        }
        if let node = fields.value("listen"), let listen = readListen(node, path: fields.path("listen")) {
            config.listen = listen
        }
        if let node = fields.node("admin_listen") {
            config.adminListen = readAdminListen(node, path: fields.path("admin_listen"), listen: config.listen)
        }
        if let node = fields.value("workers") {
            config.workers = readWorkers(node, path: fields.path("workers"))
        }
        if let node = fields.value("trusted_proxies"),
            let proxies = readTrustedProxies(node, path: fields.path("trusted_proxies"))
        {
            config.trustedProxies = proxies
        }
        if let node = fields.value("limits") {
            readLimits(node, path: fields.path("limits"), into: &config)
        }
        if let node = fields.value("timeouts") {
            readTimeouts(node, path: fields.path("timeouts"), into: &config)
        }
        if let node = fields.value("access_log"),
            let log = readMapping(node, path: fields.path("access_log"), known: Self.accessLogKeys),
            let format = log.value("format"),
            let value = choice(
                format, path: log.path("format"), [AccessLogFormat.json, .logfmt, .off],
                expectation: "expected json, logfmt or off")
        {
            config.accessLog = value
        }
        if let node = fields.value("upstream"),
            let upstream = readMapping(node, path: fields.path("upstream"), known: Self.upstreamKeys)
        {
            if let idle = upstream.value("max_idle_per_loop"),
                let value = integer(idle, path: upstream.path("max_idle_per_loop"), range: 0...10_000)
            {
                config.upstreamMaxIdlePerLoop = value
            }
            if let max = upstream.value("max_connections_per_loop"),
                let value = integer(max, path: upstream.path("max_connections_per_loop"), range: 1...100_000)
            {
                config.upstreamMaxConnectionsPerLoop = value
            }
            if let wait = upstream.value("queue_timeout"),
                let value = duration(wait, path: upstream.path("queue_timeout"))
            {
                config.upstreamQueueTimeout = value
            }
        }
        if let node = fields.value("tls") {
            config.tls = readTLS(node, path: fields.path("tls"))
        }
        if let node = fields.value("http2") {
            config.http2 = readHTTP2(node, path: fields.path("http2"))
        }
        return config
    }

    /// At least one address; the same address twice is refused (port 0, "any free port", may repeat).
    private mutating func readListen(_ node: Node, path: String) -> [ListenAddress]? {
        guard let items = list(node, path: path) else { return nil }
        guard !items.isEmpty else {
            report("expected at least one address", at: path, node: node)
            return nil
        }
        var addresses: [ListenAddress] = []
        var firstIndex: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let address = listenAddress(item, path: itemPath) else { continue }
            if address.port != 0, let first = firstIndex[address.description] {
                report("duplicate address (same as \(path)[\(first)])", at: itemPath, node: item)
                continue
            }
            firstIndex[address.description] = index
            addresses.append(address)
        }
        return addresses.count == items.count ? addresses : nil
    }

    /// `host:port`, or `null`/`off` to run without the admin listener.
    private mutating func readAdminListen(_ node: Node, path: String, listen: [ListenAddress]) -> ListenAddress? {
        guard !node.isNull else { return nil }
        let expectation = "expected host:port (IPv6 as [::1]:8080), null or off"
        guard let text = string(node, path: path, expected: expectation) else { return nil }
        if text == "off" { return nil }
        guard let address = ListenAddress.parse(text) else {
            report(expectation, at: path, node: node)
            return nil
        }
        if address.port != 0, let index = listen.firstIndex(of: address) {
            report("same address as server.listen[\(index)]", at: path, node: node)
        }
        return address
    }

    /// `auto` (nil: one event loop per core) or 1...256.
    private mutating func readWorkers(_ node: Node, path: String) -> Int? {
        let expectation = "expected auto or an integer from 1 to 256"
        guard let text = string(node, path: path, expected: expectation) else { return nil }
        if text == "auto" { return nil }
        guard let count = Units.integer(text), (1...256).contains(count) else {
            report(expectation, at: path, node: node)
            return nil
        }
        return count
    }

    private mutating func readTrustedProxies(_ node: Node, path: String) -> [CIDR]? {
        guard let items = list(node, path: path) else { return nil }
        var blocks: [CIDR] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            let expectation = "expected a CIDR such as 10.0.0.0/8 or fd00::/8"
            guard let text = string(item, path: itemPath, expected: expectation) else { continue }
            guard let block = CIDR.parse(text) else {
                report(expectation, at: itemPath, node: item)
                continue
            }
            blocks.append(block)
        }
        return blocks.count == items.count ? blocks : nil
    }

    private mutating func readLimits(_ node: Node, path: String, into config: inout ServerConfig) {
        guard let fields = readMapping(node, path: path, known: Self.limitsKeys) else { return }
        if let node = fields.value("max_header_bytes"),
            let size = size(
                node, path: fields.path("max_header_bytes"), range: Self.headerBytesRange, bounds: "1KiB and 1MiB"),
            let bytes = Int(exactly: size)
        {
            config.maxHeaderBytes = bytes
        }
        if let node = fields.value("max_body_bytes"), let size = size(node, path: fields.path("max_body_bytes")) {
            config.maxBodyBytes = size
        }
        let counts: [(key: String, range: ClosedRange<Int>, field: WritableKeyPath<ServerConfig, Int>)] = [
            ("max_header_count", 1...1000, \.maxHeaderCount),
            ("max_connections", 1...1_000_000, \.maxConnections),
            ("max_connections_per_client", 0...1_000_000, \.maxConnectionsPerClient),
        ]
        for (key, range, field) in counts {
            if let node = fields.value(key), let value = integer(node, path: fields.path(key), range: range) {
                config[keyPath: field] = value
            }
        }
    }

    private mutating func readTimeouts(_ node: Node, path: String, into config: inout ServerConfig) {
        guard let fields = readMapping(node, path: path, known: Self.timeoutsKeys) else { return }
        let targets: [(key: String, field: WritableKeyPath<ServerConfig, GatehouseCore.Duration>)] = [
            ("request_header", \.requestHeaderTimeout),
            ("idle", \.idleTimeout),
            ("upstream_connect", \.upstreamConnectTimeout),
            ("upstream_response", \.upstreamResponseTimeout),
            ("shutdown_grace", \.shutdownGrace),
        ]
        for target in targets {
            guard let node = fields.value(target.key) else { continue }
            // A zero grace period is meaningful: stop without waiting for in-flight requests.
            let allowZero = target.key == "shutdown_grace"
            if let value = duration(node, path: fields.path(target.key), allowZero: allowZero) {
                config[keyPath: target.field] = value
            }
        }
    }
}
