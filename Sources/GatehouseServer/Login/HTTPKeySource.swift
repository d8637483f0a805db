import AsyncHTTPClient
import Foundation
import GatehouseAuth
import GatehouseCore
import NIOCore
import NIOSSL

/// Fetches providers' key sets: `file://` paths from disk; otherwise over HTTP(S) with AsyncHTTPClient, from
/// the explicit `jwks_uri` or via OIDC discovery (`<issuer>/.well-known/openid-configuration`, whose `issuer`
/// must equal the configured one, OIDC Discovery §4.3). Every response is bounded (1 MiB) and every call is
/// bounded in time (10 s); redirects are not followed; https is required except on loopback.
public final class HTTPKeySource: KeySource {
    public static let maxBytes = 1 << 20
    let clients: [String: HTTPClient]
    let defaultClient: HTTPClient

    public init(providers: [ProviderConfig], eventLoopGroup: EventLoopGroup) throws {
        func makeClient(caFile: String?) throws -> HTTPClient {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            var configuration = HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(5), read: .seconds(10)))
            configuration.connectionPool.idleTimeout = .seconds(30)
            return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
        }
        defaultClient = try makeClient(caFile: nil)
        var clients: [String: HTTPClient] = [:]
        for provider in providers where provider.caFile != nil {
            clients[provider.id] = try makeClient(caFile: provider.caFile)
        }
        self.clients = clients
    }

    public func shutdown() async {
        try? await defaultClient.shutdown()
        for client in clients.values { try? await client.shutdown() }
    }

    public struct FetchError: Error, CustomStringConvertible {
        public let description: String
    }

    func client(for provider: ProviderConfig) -> HTTPClient { clients[provider.id] ?? defaultClient }

    public func fetchKeySet(for provider: ProviderConfig) async throws -> (
        bytes: [UInt8], maxAge: GatehouseCore.Duration?
    ) {
        let client = client(for: provider)
        let jwksURI: String
        if let explicit = provider.jwksURI {
            jwksURI = explicit
        } else {
            var base = provider.issuer
            while base.hasSuffix("/") { base.removeLast() }
            let (body, _) = try await get(base + "/.well-known/openid-configuration", client: client)
            let doc = try JSONValue.parse(body)
            guard doc["issuer"]?.stringValue == provider.issuer else {
                throw FetchError(description: "discovery document names another issuer")
            }
            guard let uri = doc["jwks_uri"]?.stringValue else {
                throw FetchError(description: "discovery document has no jwks_uri")
            }
            // A remote document may only point at https (or loopback http): never at a local file.
            guard Self.isAllowed(uri) else { throw FetchError(description: "discovery jwks_uri must be https") }
            jwksURI = uri
        }
        if jwksURI.hasPrefix("file://") {
            let path = String(jwksURI.dropFirst(7))
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw FetchError(description: "cannot open \(path)")
            }
            defer { try? handle.close() }
            let data = try handle.read(upToCount: Self.maxBytes + 1) ?? Data()
            guard data.count <= Self.maxBytes else { throw FetchError(description: "key set too large") }
            return (Array(data), nil)
        }
        return try await get(jwksURI, client: client)
    }

    /// True for https URLs, and for http URLs whose host is a loopback address or `localhost`.
    static func isAllowed(_ url: String) -> Bool {
        if url.hasPrefix("https://") { return true }
        guard url.hasPrefix("http://") else { return false }
        let rest = url.dropFirst(7)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let (host, _) = splitHostPort(authority) else { return false }
        if host == "localhost" { return true }
        guard let ip = IPAddress(host) else { return false }
        return CIDR.parse("127.0.0.0/8")?.contains(ip) == true || CIDR.parse("::1")?.contains(ip) == true
    }

    func get(_ url: String, client: HTTPClient) async throws -> ([UInt8], GatehouseCore.Duration?) {
        guard Self.isAllowed(url) else { throw FetchError(description: "URL must be https (or http on loopback)") }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await client.execute(request, timeout: .seconds(10))
        guard response.status == .ok else { throw FetchError(description: "HTTP status \(response.status.code)") }
        let body = try await response.body.collect(upTo: Self.maxBytes)
        return (Array(body.readableBytesView), Self.maxAge(response.headers["cache-control"]))
    }

    /// `max-age=N` from Cache-Control, if present and sane.
    static func maxAge(_ values: [String]) -> GatehouseCore.Duration? {
        for value in values {
            for directive in value.split(separator: ",") {
                let parts = directive.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "max-age",
                    let seconds = Int64(parts[1].trimmingCharacters(in: .whitespaces)), seconds >= 0
                else { continue }
                return .seconds(min(seconds, 86_400 * 7))
            }
        }
        return nil
    }
}
