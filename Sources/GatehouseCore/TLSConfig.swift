/// `server.tls` — HTTPS listeners (issue 5).
public struct TLSListenerConfig: Sendable, Equatable {
    // The case names say the versions as written ("1.2"); `v12` would read as version twelve.
    public enum Version: String, Sendable, Equatable {
        // swift-format-ignore: AlwaysUseLowerCamelCase
        case v1_2 = "1.2"
        // swift-format-ignore: AlwaysUseLowerCamelCase
        case v1_3 = "1.3"
    }

    public var listen: [ListenAddress]
    /// PEM file: the certificate chain, leaf first.
    public var certificateFile: String
    public var privateKeyFile: String
    public var minVersion: Version
    /// ALPN protocols offered, in preference order: `h2`, `http/1.1`.
    public var alpn: [String]

    public init(
        listen: [ListenAddress] = [ListenAddress(host: "0.0.0.0", port: 8443)], certificateFile: String,
        privateKeyFile: String, minVersion: Version = .v1_2, alpn: [String] = ["h2", "http/1.1"]
    ) {
        self.listen = listen
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.minVersion = minVersion
        self.alpn = alpn
    }
}

/// `server.http2`.
public struct HTTP2Config: Sendable, Equatable {
    /// Accept h2c with prior knowledge on the plain listeners.
    public var cleartext: Bool
    public var maxConcurrentStreams: Int

    public init(cleartext: Bool = false, maxConcurrentStreams: Int = 100) {
        self.cleartext = cleartext
        self.maxConcurrentStreams = maxConcurrentStreams
    }
}

/// TLS toward an `https://` upstream (route key `upstream_tls`, a Gatehouse addition). Part of the upstream's
/// identity: pooled connections are keyed by it.
public struct UpstreamTLS: Sendable, Hashable {
    /// PEM bundle of CAs trusted for the upstream; nil = the system trust store.
    public var caFile: String?
    /// Client certificate chain and key for mutual TLS.
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    /// Name sent in SNI and checked against the certificate; nil = the upstream URL's host.
    public var serverName: String?
    /// Development only: no certificate verification at all (logged loudly at start).
    public var insecureSkipVerify: Bool

    public init(
        caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
        serverName: String? = nil,
        insecureSkipVerify: Bool = false
    ) {
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.serverName = serverName
        self.insecureSkipVerify = insecureSkipVerify
    }
}
