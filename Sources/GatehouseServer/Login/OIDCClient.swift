import AsyncHTTPClient
import Foundation
import GatehouseAuth
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The outbound half of the browser login: the provider's discovery metadata, the token endpoint
/// (authorization code and refresh grants) and userinfo. Every call goes through `HTTPKeySource`'s clients
/// (https, or http on loopback; `ca_file` honoured; no redirects; 10 s; 1 MiB).
final class OIDCClient: Sendable {
    struct Metadata: Sendable, Equatable {
        var authorizationEndpoint: String
        var tokenEndpoint: String
        var userinfoEndpoint: String?
        var endSessionEndpoint: String?
    }

    struct TokenResponse: Sendable {
        var accessToken: String
        var idToken: String?
        var refreshToken: String?
        var expiresIn: Int64?
    }

    enum Failure: Error, CustomStringConvertible {
        /// The provider refused the grant (`invalid_grant` and other OAuth errors in a 4xx answer).
        case refused(error: String)
        /// Network trouble, timeouts, 5xx, malformed answers: worth trying again later.
        case transient(String)

        var description: String {
            switch self {
            case .refused(let error): return "provider refused the grant: \(error)"
            case .transient(let why): return why
            }
        }
    }

    let http: HTTPKeySource
    private let metadata = NIOLockedValueBox<[String: Metadata]>([:])

    init(http: HTTPKeySource) {
        self.http = http
    }

    func cachedMetadata(for providerID: String) -> Metadata? {
        metadata.withLockedValue { $0[providerID] }
    }

    /// Discovery (cached after the first success).
    func metadata(for provider: ProviderConfig) async throws -> Metadata {
        if let cached = cachedMetadata(for: provider.id) { return cached }
        let client = http.client(for: provider)
        var base = provider.issuer
        while base.hasSuffix("/") { base.removeLast() }
        let (body, _) = try await http.get(base + "/.well-known/openid-configuration", client: client)
        let doc = try JSONValue.parse(body)
        guard doc["issuer"]?.stringValue == provider.issuer else {
            throw Failure.transient("discovery document names another issuer")
        }
        func endpoint(_ name: String) throws -> String? {
            guard let value = doc[name] else { return nil }
            guard let text = value.stringValue, HTTPKeySource.isAllowed(text) else {
                throw Failure.transient("discovery \(name) must be an https URL")
            }
            return text
        }
        guard let authorization = try endpoint("authorization_endpoint"), let token = try endpoint("token_endpoint")
        else {
            throw Failure.transient("discovery document lacks authorization_endpoint or token_endpoint")
        }
        let result = Metadata(
            authorizationEndpoint: authorization, tokenEndpoint: token,
            userinfoEndpoint: try endpoint("userinfo_endpoint"),
            endSessionEndpoint: try endpoint("end_session_endpoint"))
        metadata.withLockedValue { $0[provider.id] = result }
        return result
    }

    func exchangeCode(
        _ code: String, verifier: String, redirectURI: String, provider: ProviderConfig
    ) async throws -> TokenResponse {
        try await tokenRequest(
            [
                ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                ("code_verifier", verifier),
            ],
            provider: provider)
    }

    func refresh(_ refreshToken: String, provider: ProviderConfig) async throws -> TokenResponse {
        try await tokenRequest([("grant_type", "refresh_token"), ("refresh_token", refreshToken)], provider: provider)
    }

    private func tokenRequest(_ form: [(String, String)], provider: ProviderConfig) async throws -> TokenResponse {
        let meta: Metadata
        do { meta = try await metadata(for: provider) } catch { throw Failure.transient("discovery: \(error)") }
        guard let clientID = provider.clientID else { throw Failure.refused(error: "no client_id") }
        var fields = form
        var request = HTTPClientRequest(url: meta.tokenEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        switch (provider.tokenEndpointAuth, provider.clientSecret) {
        case (.clientSecretBasic, let secret?):
            // RFC 6749 §2.3.1: both parts form-encoded before base64.
            let pair = FormEncoding.escape(clientID) + ":" + FormEncoding.escape(secret)
            request.headers.add(name: "Authorization", value: "Basic " + Data(pair.utf8).base64EncodedString())
        case (.clientSecretPost, let secret?):
            fields += [("client_id", clientID), ("client_secret", secret)]
        case (_, nil):
            fields.append(("client_id", clientID))  // a public client: PKCE is its proof
        }
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode(fields)))
        let status: UInt
        let body: [UInt8]
        do {
            let response = try await http.client(for: provider).execute(request, timeout: .seconds(10))
            status = response.status.code
            body = Array(try await response.body.collect(upTo: HTTPKeySource.maxBytes).readableBytesView)
        } catch {
            throw Failure.transient("token endpoint unreachable: \(type(of: error))")
        }
        let doc = try? JSONValue.parse(body)
        // 400/401 with an OAuth error is the provider's answer (invalid_grant ends a session); 408, 429 and
        // other statuses are trouble worth waiting out.
        if status == 400 || status == 401 || status == 403 {
            throw Failure.refused(error: doc?["error"]?.stringValue.map(Self.sanitize) ?? "HTTP \(status)")
        }
        guard status == 200, let doc else { throw Failure.transient("token endpoint answered HTTP \(status)") }
        guard let accessToken = doc["access_token"]?.stringValue, !accessToken.isEmpty,
            doc["token_type"]?.stringValue?.lowercased() == "bearer"
        else { throw Failure.transient("token response lacks a bearer access_token") }
        var expiresIn: Int64?
        if let n = doc["expires_in"]?.numberValue, n >= 0, n < 1e9 { expiresIn = Int64(n) }
        return TokenResponse(
            accessToken: accessToken, idToken: doc["id_token"]?.stringValue,
            refreshToken: doc["refresh_token"]?.stringValue,
            expiresIn: expiresIn)
    }

    func userinfo(accessToken: String, provider: ProviderConfig) async throws -> [String: JSONValue] {
        guard let url = try await metadata(for: provider).userinfoEndpoint, HTTPKeySource.isAllowed(url) else {
            return [:]
        }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer " + accessToken)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await http.client(for: provider).execute(request, timeout: .seconds(10))
        guard response.status == .ok else { throw Failure.transient("userinfo answered HTTP \(response.status.code)") }
        let body = try await response.body.collect(upTo: HTTPKeySource.maxBytes)
        guard case .object(let claims) = try JSONValue.parse(body.readableBytesView) else {
            throw Failure.transient("userinfo is not a JSON object (signed userinfo is not supported)")
        }
        return claims
    }

    /// OAuth error codes are short ASCII words; anything else is not repeated into logs or pages.
    static func sanitize(_ s: String) -> String {
        let ok =
            s.utf8.count <= 64
            && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }
        return ok ? s : "unrecognised_error"
    }
}
