import GatehouseCore
import Yams

/// `server.tls`, `server.http2` and a route's `upstream_tls` (issue 5).
extension NodeReader {
    static let tlsKeys: Set<String> = ["listen", "certificate_file", "private_key_file", "min_version", "alpn"]
    static let http2Keys: Set<String> = ["cleartext", "max_concurrent_streams"]
    static let upstreamTLSKeys: Set<String> = [
        "ca_file", "client_certificate_file", "client_key_file", "server_name", "insecure_skip_verify",
    ]

    mutating func readTLS(_ node: Node, path: String) -> TLSListenerConfig? {
        guard let fields = readMapping(node, path: path, known: Self.tlsKeys) else { return nil }
        let cert = required(fields, "certificate_file").flatMap {
            nonEmptyString($0, path: fields.path("certificate_file"))
        }
        let key = required(fields, "private_key_file").flatMap {
            nonEmptyString($0, path: fields.path("private_key_file"))
        }
        var config = TLSListenerConfig(certificateFile: cert ?? "", privateKeyFile: key ?? "")
        if let node = fields.value("listen") {
            guard let items = list(node, path: fields.path("listen")) else { return nil }
            if items.isEmpty { report("must list at least one address", at: fields.path("listen"), node: node) }
            config.listen = items.enumerated().compactMap { listenAddress($1, path: "\(fields.path("listen"))[\($0)]") }
        }
        if let node = fields.value("min_version"),
            let value = choice(
                node, path: fields.path("min_version"), [TLSListenerConfig.Version.v1_2, .v1_3],
                expectation: "expected \"1.2\" or \"1.3\"")
        {
            config.minVersion = value
        }
        if let node = fields.value("alpn"),
            let values = strings(
                node, path: fields.path("alpn"),
                check: { ["h2", "http/1.1"].contains($0) ? nil : "expected h2 or http/1.1" })
        {
            if values.isEmpty { report("must list h2, http/1.1 or both", at: fields.path("alpn"), node: node) }
            config.alpn = values
        }
        guard cert != nil, key != nil else { return nil }
        return config
    }

    mutating func readHTTP2(_ node: Node, path: String) -> HTTP2Config {
        var config = HTTP2Config()
        guard let fields = readMapping(node, path: path, known: Self.http2Keys) else { return config }
        if let node = fields.value("cleartext"), let value = bool(node, path: fields.path("cleartext")) {
            config.cleartext = value
        }
        if let node = fields.value("max_concurrent_streams"),
            let value = integer(node, path: fields.path("max_concurrent_streams"), range: 1...10_000)
        {
            config.maxConcurrentStreams = value
        }
        return config
    }

    mutating func readUpstreamTLS(_ node: Node, path: String) -> UpstreamTLS? {
        guard let fields = readMapping(node, path: path, known: Self.upstreamTLSKeys) else { return nil }
        var tls = UpstreamTLS()
        if let node = fields.value("ca_file") { tls.caFile = nonEmptyString(node, path: fields.path("ca_file")) }
        if let node = fields.value("client_certificate_file") {
            tls.clientCertificateFile = nonEmptyString(node, path: fields.path("client_certificate_file"))
        }
        if let node = fields.value("client_key_file") {
            tls.clientKeyFile = nonEmptyString(node, path: fields.path("client_key_file"))
        }
        if (tls.clientCertificateFile == nil) != (tls.clientKeyFile == nil) {
            report("set both client_certificate_file and client_key_file, or neither", at: path, node: node)
        }
        if let node = fields.value("server_name"), let name = nonEmptyString(node, path: fields.path("server_name")) {
            if IPAddress(name) != nil {
                report(
                    "expected a host name (an IP address cannot be sent as SNI; leave server_name out to check the certificate's IP address)",
                    at: fields.path("server_name"), node: node)
            } else if HostPattern.parse(name) == .exact(name.lowercased()) {
                tls.serverName = name
            } else {
                report("expected a host name", at: fields.path("server_name"), node: node)
            }
        }
        if let node = fields.value("insecure_skip_verify"),
            let value = bool(node, path: fields.path("insecure_skip_verify"))
        {
            tls.insecureSkipVerify = value
        }
        return tls
    }
}
