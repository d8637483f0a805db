import Foundation
import GatehouseConfig
import GatehouseCore
import Testing

/// `providers:` and the authorization keys of routes, read into typed values.
@Suite struct ProviderConfigTests {
    static let hmacKey = String(repeating: "0123456789abcdef", count: 3)

    @Test func providersAndJWTRouteRoundTrip() throws {
        let yaml = """
            version: 1
            providers:
              - id: keycloak
                issuer: https://sso.example.com/realms/acme
                jwks_uri: https://sso.example.com/realms/acme/protocol/openid-connect/certs
                ca_file: /etc/gatehouse/sso-ca.pem
                client_id: gatehouse
                client_secret: ${CLIENT_SECRET}
                token_endpoint_auth: client_secret_post
                scopes: [openid, email]
                audiences: [orders-api, "api://orders"]
                algorithms: [RS256, PS256, RS256]
                clock_skew: 0s
                claims:
                  user: preferred_username
                  groups: realm_access.roles
                accepted_types: [JWT, at+jwt]
                extra_auth_params: {prompt: login, max_age: 3600}
              - id: ci
                issuer: "http://127.0.0.1:8200/"
                jwks_uri: file:///etc/gatehouse/ci-jwks.json
                client_secret_file: /run/secrets/ci
                shared_secret_file: /run/secrets/ci-hmac
                clock_skew: 5m
                claims: {email: "urn:ci:email", preferred_username: job-name}
            routes:
              - id: orders
                match: {host: api.example.com, path: /orders/}
                upstream: http://127.0.0.1:4000
                auth: jwt
                providers: [keycloak, ci, keycloak]
                allow:
                  any_group: [orders-reader, orders-admin]
                  all_groups: [staff]
                  emails: [alice@example.com]
                  email_domains: [example.com]
                  scopes: ["orders:read"]
                  claims: {tenant: acme, email_verified: true, level: 2, ratio: 1.50, realm_access.roles: auditor}
                identity_headers:
                  X-Tenant: tenant
                  x-forwarded-user: preferred_username
                pass_access_token: true
              - id: app
                upstream: http://127.0.0.1:3000
                auth: session
                allow: {}
              - id: public
                match: {path: /health}
                upstream: http://127.0.0.1:4000
                auth: none
                identity_headers: {}
            """
        let files = ["/run/secrets/ci": "ci-secret\n", "/run/secrets/ci-hmac": Self.hmacKey]
        let config = try ConfigLoader.parse(
            yaml: yaml, file: "test.yaml", environment: ["CLIENT_SECRET": "pa$word"], readFile: fakeFiles(files))

        #expect(config.providers.count == 2)
        #expect(
            config.providers.first
                == ProviderConfig(
                    id: "keycloak", issuer: "https://sso.example.com/realms/acme",
                    jwksURI: "https://sso.example.com/realms/acme/protocol/openid-connect/certs",
                    caFile: "/etc/gatehouse/sso-ca.pem", clientID: "gatehouse", clientSecret: "pa$word",
                    tokenEndpointAuth: .clientSecretPost, scopes: ["openid", "email"],
                    audiences: ["orders-api", "api://orders"], algorithms: [.rs256, .ps256], sharedSecret: nil,
                    clockSkew: .seconds(0),
                    claims: ClaimMapping(user: "preferred_username", groups: "realm_access.roles"),
                    acceptedTypes: ["JWT", "at+jwt"], extraAuthParams: ["prompt": "login", "max_age": "3600"]))
        #expect(config.providers.first?.acceptedAudiences == ["orders-api", "api://orders", "gatehouse"])
        #expect(
            config.providers.last
                == ProviderConfig(
                    id: "ci", issuer: "http://127.0.0.1:8200/", jwksURI: "file:///etc/gatehouse/ci-jwks.json",
                    clientSecret: "ci-secret",
                    algorithms: JWTAlgorithm.asymmetric.union([.hs256, .hs384]),  // a 48-byte secret: no HS512
                    sharedSecret: Array(Self.hmacKey.utf8), clockSkew: .seconds(300),
                    claims: ClaimMapping(email: "urn:ci:email", preferredUsername: "job-name")))

        #expect(config.routes.count == 3)
        let orders = config.routes[0]
        #expect(orders.auth == .jwt)
        #expect(orders.providers == ["keycloak", "ci"])
        #expect(
            orders.allow
                == AllowRules(
                    anyGroup: ["orders-reader", "orders-admin"], allGroups: ["staff"], emails: ["alice@example.com"],
                    emailDomains: ["example.com"], scopes: ["orders:read"],
                    claims: [
                        "tenant": "acme", "email_verified": "true", "level": "2", "ratio": "1.50",
                        "realm_access.roles": "auditor",
                    ]))
        #expect(
            orders.identityHeaders == [
                IdentityHeader(name: "X-Tenant", claim: "tenant"),
                IdentityHeader(name: "x-forwarded-user", claim: "preferred_username"),
            ])
        #expect(orders.passAccessToken)
        #expect(
            config.routes[1]
                == RouteConfig(
                    id: "app", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000), auth: .session))
        #expect(config.routes[1].allow.isEmpty)
        #expect(config.routes[1].providers == nil)
        #expect(config.routes[2].identityHeaders.isEmpty)
        #expect(config.routes[2].passAccessToken == false)
    }

    @Test func providerDefaults() throws {
        let config = try ConfigLoader.parse(yaml: jwtDocument(), file: "test.yaml", environment: [:])
        let provider = try #require(config.providers.first)
        #expect(provider == ProviderConfig(id: "corp", issuer: "https://idp.example.com"))
        #expect(provider.algorithms == JWTAlgorithm.asymmetric)
        #expect(!provider.algorithms.contains(.hs256))
        #expect(provider.scopes == ["openid", "email", "profile"])
        #expect(provider.tokenEndpointAuth == .clientSecretBasic)
        #expect(provider.clockSkew == .seconds(60))
        #expect(config.routes.first?.providers == nil)
        #expect(config.routes.first?.allow == AllowRules())
        #expect(config.routes.first?.passAccessToken == false)
    }

    @Test func listedHMACAlgorithmsNeedAndUseTheSharedSecret() throws {
        let yaml = jwtDocument(provider: "    shared_secret_file: /hmac\n    algorithms: [HS256, ES256]\n")
        let config = try ConfigLoader.parse(
            yaml: yaml, file: "test.yaml", environment: [:], readFile: fakeFiles(["/hmac": Self.hmacKey]))
        #expect(config.providers.first?.algorithms == [.hs256, .es256])
        #expect(config.providers.first?.sharedSecret?.count == 48)
    }

    @Test(arguments: [
        "https://idp.example.com", "https://idp.example.com/", "https://IdP.example.com:8443/realms/a%20b",
        "http://localhost:8080/realms/dev", "http://127.0.0.1/", "http://127.8.9.10:9000", "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/", "http://LOCALHOST",
    ])
    func issuerAccepted(issuer: String) throws {
        let yaml = providerDocument("  - id: corp\n    issuer: \"\(issuer)\"\n")
        let config = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
        #expect(config.providers.first?.issuer == issuer)
    }

    @Test(arguments: [
        "http://128.0.0.1/", "http://10.0.0.1", "http://[::2]/", "http://localhost.", "https://", "https:///path",
        "https://idp example.com", "HTTPS://idp.example.com", "https://idp.example.com:99999",
        "https://idp.example.com/a b", "https://idp.example.com/é",
    ])
    func issuerRefused(issuer: String) {
        let found = problems(providerDocument("  - id: corp\n    issuer: \"\(issuer)\"\n"))
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("test.yaml:4:13: providers[0].issuer: ") == true)
    }

    @Test(arguments: [
        "https://idp.example.com/keys", "https://b2c.example.com/tenant/discovery/v2.0/keys?p=b2c_1_signin",
        "http://127.0.0.1:8200/jwks", "file:///etc/gatehouse/jwks.json",
    ])
    func jwksURIAccepted(uri: String) throws {
        let yaml = jwtDocument(provider: "    jwks_uri: \"\(uri)\"\n")
        let config = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
        #expect(config.providers.first?.jwksURI == uri)
    }

    @Test func routeProviderIDsOfBrokenProvidersAreNotUnknown() {
        // The provider's own problem is enough: the route's reference to it is not reported again.
        let yaml = """
            version: 1
            providers:
              - id: corp
                issuer: http://idp.example.com
            routes:
              - id: api
                upstream: http://127.0.0.1:4000
                auth: jwt
                providers: [corp]
            """
        #expect(
            problems(yaml) == [
                "test.yaml:4:13: providers[0].issuer: http:// is only allowed for a loopback host (127.0.0.0/8, ::1 or localhost); use https://"
            ])
    }

    @Test func everyAuthorizationProblemIsReported() {
        let yaml = """
            version: 1
            routes:
              - id: public
                upstream: http://127.0.0.1:3000
                auth: none
                providers: [corp]
                allow: {emails: [a@b]}
                pass_access_token: true
                identity_headers: {X-Tenant: tenant}
              - id: api
                match: {path: /api}
                upstream: http://127.0.0.1:4000
                auth: jwt
                providers: [corp]
                allow: {email_domains: ["@example.com"]}
            """
        #expect(
            problems(yaml) == [
                "test.yaml:6:5: routes[0].providers: only meaningful on jwt or session routes",
                "test.yaml:7:5: routes[0].allow: only meaningful on jwt or session routes",
                "test.yaml:8:5: routes[0].pass_access_token: only meaningful on jwt or session routes",
                "test.yaml:13:11: routes[1].auth: auth: jwt needs at least one provider under providers:",
                "test.yaml:14:17: routes[1].providers[0]: unknown provider 'corp'",
                "test.yaml:15:29: routes[1].allow.email_domains[0]: expected a domain without @ (example.com, not @example.com)",
            ])
    }

    // MARK: Secret files on disk

    @Test func secretFilesAreReadFromDisk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-secrets-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let clientSecret = directory.appendingPathComponent("client-secret").path
        let hmac = directory.appendingPathComponent("hmac").path
        try "s3cr3t-value\r\n\n".write(toFile: clientSecret, atomically: true, encoding: .utf8)
        // A binary key, kept byte for byte (including a trailing line feed).
        let key: [UInt8] = (0..<40).map { UInt8(($0 * 37) % 256) } + [0x0A]
        try Data(key).write(to: URL(fileURLWithPath: hmac))
        let file = directory.appendingPathComponent("gatehouse.yaml").path
        let yaml = jwtDocument(provider: "    client_secret_file: \(clientSecret)\n    shared_secret_file: \(hmac)\n")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)

        let config = try ConfigLoader.load(path: file, environment: [:])
        let provider = try #require(config.providers.first)
        #expect(provider.clientSecret == "s3cr3t-value")
        #expect(provider.sharedSecret == key)
        #expect(provider.algorithms.contains(.hs256) && !provider.algorithms.contains(.hs384))  // 41 bytes

        // The same document through parse, with the default reader.
        let parsed = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
        #expect(parsed.providers == config.providers)
    }

    @Test func unreadableSecretFilesAreProblemsWithoutTheirContent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-secrets-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let short = directory.appendingPathComponent("short").path
        try "tooshort-secret".write(toFile: short, atomically: true, encoding: .utf8)
        let large = directory.appendingPathComponent("large").path
        try Data(count: ConfigLoader.maxSecretFileBytes + 1).write(to: URL(fileURLWithPath: large))
        let missing = directory.appendingPathComponent("missing").path
        let yaml = """
            version: 1
            providers:
              - id: a
                issuer: https://a.example.com
                shared_secret_file: \(short)
              - id: b
                issuer: https://b.example.com
                client_secret_file: \(missing)
                shared_secret_file: \(directory.path)
              - id: c
                issuer: https://c.example.com
                client_secret_file: \(large)
            routes:
              - id: api
                upstream: http://127.0.0.1:4000
                auth: jwt
            """
        let found = problems(yaml, files: [:])
        #expect(found.count == 4)
        let fromDisk: [String]
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:])
            fromDisk = []
        } catch {
            fromDisk = error.problems.map(\.description)
        }
        #expect(
            fromDisk == [
                "test.yaml:5:25: providers[0].shared_secret_file: the shared secret must be at least 32 bytes (the file has 15)",
                "test.yaml:8:25: providers[1].client_secret_file: cannot read file: no such file",
                "test.yaml:9:25: providers[1].shared_secret_file: cannot read file: it is a directory",
                "test.yaml:12:25: providers[2].client_secret_file: cannot read file: larger than 64 KiB",
            ])
        #expect(!fromDisk.joined().contains("tooshort"))
    }

    @Test func aReaderErrorOfAnotherTypeIsDescribed() {
        struct Refused: Error, CustomStringConvertible {
            var description: String { "refused by policy" }
        }
        let yaml = jwtDocument(provider: "    client_secret_file: /run/secrets/oidc\n")
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: [:]) { _ in throw Refused() }
            Issue.record("expected a ConfigError")
        } catch {
            #expect(
                error.description
                    == "test.yaml:5:25: providers[0].client_secret_file: cannot read file: refused by policy")
        }
    }
}

@Suite struct SharedSecretLengthTests {
    @Test func defaultHMACAlgorithmsFollowTheSecretLength() throws {
        for (length, expected) in [(32, [JWTAlgorithm.hs256]), (48, [.hs256, .hs384]), (64, [.hs256, .hs384, .hs512])] {
            let yaml = jwtDocument(provider: "    shared_secret_file: /s\n    audiences: [api]\n")
            let config = try ConfigLoader.parse(
                yaml: yaml, file: "test.yaml", environment: [:], readFile: fakeFiles(["/s": String(repeating: "k", count: length)]))
            let hmac = config.providers.first?.algorithms.filter(\.isSymmetric).sorted { $0.rawValue < $1.rawValue }
            #expect(hmac == expected, "\(length) bytes")
        }
    }
}
