import Testing

/// One failing document per rule, each asserting the exact problem text (file:line:column: path: message).
@Suite struct ProblemFixtureTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        var rule: String
        var yaml: String
        var expected: String
        var environment: [String: String] = [:]
        /// Secret files: path -> content.
        var files: [String: String] = [:]
        var testDescription: String { rule }
    }

    static let fixtures: [Fixture] = [
        // Document level.
        Fixture(
            rule: "empty document", yaml: "",
            expected: "test.yaml:1:1: the document is empty (expected version: 1 and routes)"),
        Fixture(
            rule: "comments only", yaml: "# nothing\n",
            expected: "test.yaml:1:1: the document is empty (expected version: 1 and routes)"),
        Fixture(rule: "root is not a mapping", yaml: "- 1\n- 2\n", expected: "test.yaml:1:1: expected a mapping"),
        Fixture(
            rule: "YAML syntax error",
            yaml: "version: 1\nroutes: [\n",
            expected:
                "test.yaml:3:1: invalid YAML: did not find expected node content (while parsing a flow node at line 3, column 1)"
        ),
        Fixture(
            rule: "version missing",
            yaml: "routes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:1:1: version: required"),
        Fixture(
            rule: "version unsupported",
            yaml: "version: 2\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:1:10: version: unsupported version, expected 1"),
        Fixture(rule: "routes missing", yaml: "version: 1\n", expected: "test.yaml:1:1: routes: required"),
        Fixture(rule: "routes null", yaml: "version: 1\nroutes:\n", expected: "test.yaml:2:8: routes: required"),
        Fixture(
            rule: "routes empty", yaml: "version: 1\nroutes: []\n",
            expected: "test.yaml:2:9: routes: expected at least one route"),
        Fixture(
            rule: "routes not a list", yaml: "version: 1\nroutes: {}\n",
            expected: "test.yaml:2:9: routes: expected a list"),
        Fixture(
            rule: "route not a mapping", yaml: "version: 1\nroutes: [app]\n",
            expected: "test.yaml:2:10: routes[0]: expected a mapping"),
        Fixture(
            rule: "unknown top-level key", yaml: document(top: "extra: 1"),
            expected: "test.yaml:6:1: extra: unknown key"),
        Fixture(
            rule: "duplicate top-level key",
            yaml: "version: 1\nversion: 1\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:2:1: version: duplicate key (first defined at line 1)"),
        // session and login
        Fixture(
            rule: "session without secrets", yaml: document(top: "session: {}"),
            expected: "test.yaml:6:10: session.secrets: required"),
        Fixture(
            rule: "session secret too short", yaml: document(top: "session: { secrets: [c2hvcnQ=] }"),
            expected: "test.yaml:6:22: session.secrets[0]: expected base64 of at least 32 random bytes (e.g. openssl rand -base64 32)"),
        Fixture(
            rule: "session secret empty after interpolation", yaml: document(top: "session: { secrets: [\"${EMPTY}\"] }"),
            expected: "test.yaml:6:22: session.secrets[0]: must not be empty", environment: ["EMPTY": ""]),
        Fixture(
            rule: "same_site none needs secure",
            yaml: document(top: "session: { secrets: [MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=], secure: false, same_site: none }"),
            expected: "test.yaml:6:95: session.same_site: same_site: none requires secure: true (browsers drop such cookies)"),
        Fixture(
            rule: "session store postgres", yaml: document(top: "session: { secrets: [MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=], store: postgres }"),
            expected: "test.yaml:6:76: session.store: not supported yet: store: postgres (the shared session store) is not in this build; use store: cookie"),
        Fixture(
            rule: "session lifetime bounds", yaml: document(top: "session: { secrets: [MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=], lifetime: 10s }"),
            expected: "test.yaml:6:79: session.lifetime: must be between 1m and 30d"),
        Fixture(
            rule: "session cookie name", yaml: document(top: "session: { secrets: [MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=], cookie_name: \"a b\" }"),
            expected: "test.yaml:6:82: session.cookie_name: expected 1 to 64 letters, digits, '-' or '_'"),
        Fixture(
            rule: "login path prefix root", yaml: document(top: "login: { path_prefix: / }"),
            expected: "test.yaml:6:23: login.path_prefix: must not be / (the endpoints need their own prefix)"),
        Fixture(
            rule: "login redirect_url path", yaml: document(top: "login: { redirect_url: \"https://app.example.com/cb\" }"),
            expected: "test.yaml:6:24: login.redirect_url: must end in /oauth2/callback (the callback endpoint)"),
        Fixture(
            rule: "login allowed_redirect_hosts", yaml: document(top: "login: { allowed_redirect_hosts: [\"a b\"] }"),
            expected: "test.yaml:6:35: login.allowed_redirect_hosts[0]: expected a host name or *.suffix"),
        Fixture(
            rule: "login post_logout_redirect_url", yaml: document(top: "login: { post_logout_redirect_url: \"//evil\" }"),
            expected: "test.yaml:6:36: login.post_logout_redirect_url: expected a path starting with / or an absolute http(s):// URL"),

        // server
        Fixture(
            rule: "server not a mapping", yaml: document(server: "server: [1]\n"),
            expected: "test.yaml:2:9: server: expected a mapping"),
        Fixture(
            rule: "unknown server key", yaml: document(server: "server:\n  listn: [\"127.0.0.1:8080\"]\n"),
            expected: "test.yaml:3:3: server.listn: unknown key"),
        Fixture(
            rule: "duplicate server key", yaml: document(server: "server:\n  workers: 2\n  workers: 4\n"),
            expected: "test.yaml:4:3: server.workers: duplicate key (first defined at line 3)"),
        Fixture(
            rule: "duplicate quoted key", yaml: document(server: "server:\n  \"workers\": 2\n  workers: 4\n"),
            expected: "test.yaml:4:3: server.workers: duplicate key (first defined at line 3)"),
        Fixture(
            rule: "listen not a list", yaml: document(server: "server:\n  listen: \"127.0.0.1:8080\"\n"),
            expected: "test.yaml:3:11: server.listen: expected a list"),
        Fixture(
            rule: "listen empty", yaml: document(server: "server:\n  listen: []\n"),
            expected: "test.yaml:3:11: server.listen: expected at least one address"),
        Fixture(
            rule: "listen IPv6 without brackets", yaml: document(server: "server:\n  listen: [\"::1:8080\"]\n"),
            expected: "test.yaml:3:12: server.listen[0]: expected host:port (IPv6 as [::1]:8080)"),
        Fixture(
            rule: "listen without port", yaml: document(server: "server:\n  listen: [localhost]\n"),
            expected: "test.yaml:3:12: server.listen[0]: expected host:port (IPv6 as [::1]:8080)"),
        Fixture(
            rule: "listen port out of range", yaml: document(server: "server:\n  listen: [\"0.0.0.0:65536\"]\n"),
            expected: "test.yaml:3:12: server.listen[0]: expected host:port (IPv6 as [::1]:8080)"),
        Fixture(
            rule: "listen bad IPv4", yaml: document(server: "server:\n  listen: [\"300.1.1.1:80\"]\n"),
            expected: "test.yaml:3:12: server.listen[0]: expected host:port (IPv6 as [::1]:8080)"),
        Fixture(
            rule: "listen duplicate",
            yaml: document(server: "server:\n  listen: [\"127.0.0.1:80\", \"127.0.0.1:80\"]\n"),
            expected: "test.yaml:3:28: server.listen[1]: duplicate address (same as server.listen[0])"),
        Fixture(
            rule: "admin_listen invalid", yaml: document(server: "server:\n  admin_listen: nope\n"),
            expected: "test.yaml:3:17: server.admin_listen: expected host:port (IPv6 as [::1]:8080), null or off"),
        Fixture(
            rule: "admin_listen same as listen",
            yaml: document(server: "server:\n  listen: [\"127.0.0.1:80\"]\n  admin_listen: \"127.0.0.1:80\"\n"),
            expected: "test.yaml:4:17: server.admin_listen: same address as server.listen[0]"),
        Fixture(
            rule: "workers zero", yaml: document(server: "server:\n  workers: 0\n"),
            expected: "test.yaml:3:12: server.workers: expected auto or an integer from 1 to 256"),
        Fixture(
            rule: "workers too many", yaml: document(server: "server:\n  workers: 257\n"),
            expected: "test.yaml:3:12: server.workers: expected auto or an integer from 1 to 256"),
        Fixture(
            rule: "trusted proxy not a CIDR",
            yaml: document(server: "server:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n"),
            expected: "test.yaml:3:33: server.trusted_proxies[1]: expected a CIDR such as 10.0.0.0/8 or fd00::/8"),
        Fixture(
            rule: "max_header_bytes out of range",
            yaml: document(server: "server:\n  limits:\n    max_header_bytes: 512B\n"),
            expected: "test.yaml:4:23: server.limits.max_header_bytes: must be between 1KiB and 1MiB"),
        Fixture(
            rule: "max_body_bytes not a size", yaml: document(server: "server:\n  limits:\n    max_body_bytes: 16M\n"),
            expected: "test.yaml:4:21: server.limits.max_body_bytes: expected a size such as 4096, 512KiB or 16MiB"),
        Fixture(
            rule: "unknown limits key", yaml: document(server: "server:\n  limits:\n    max_uri_bytes: 8KiB\n"),
            expected: "test.yaml:4:5: server.limits.max_uri_bytes: unknown key"),
        Fixture(
            rule: "duration without unit", yaml: document(server: "server:\n  timeouts:\n    idle: 75\n"),
            expected: "test.yaml:4:11: server.timeouts.idle: expected a duration such as 30s, 5m, 1h30m or 250ms"),
        Fixture(
            rule: "timeout zero", yaml: document(server: "server:\n  timeouts:\n    upstream_connect: 0s\n"),
            expected: "test.yaml:4:23: server.timeouts.upstream_connect: must be greater than 0"),
        Fixture(
            rule: "timeouts not a mapping", yaml: document(server: "server:\n  timeouts: 30s\n"),
            expected: "test.yaml:3:13: server.timeouts: expected a mapping"),
        Fixture(
            rule: "access log format", yaml: document(server: "server:\n  access_log:\n    format: text\n"),
            expected: "test.yaml:4:13: server.access_log.format: expected json, logfmt or off"),
        Fixture(
            rule: "max_idle_per_loop range",
            yaml: document(server: "server:\n  upstream:\n    max_idle_per_loop: 10001\n"),
            expected: "test.yaml:4:24: server.upstream.max_idle_per_loop: expected an integer from 0 to 10000"),
        Fixture(
            rule: "max_header_count range", yaml: document(server: "server:\n  limits:\n    max_header_count: 1001\n"),
            expected: "test.yaml:4:23: server.limits.max_header_count: expected an integer from 1 to 1000"),
        Fixture(
            rule: "max_connections range", yaml: document(server: "server:\n  limits:\n    max_connections: 0\n"),
            expected: "test.yaml:4:22: server.limits.max_connections: expected an integer from 1 to 1000000"),
        Fixture(
            rule: "max_connections_per_client range",
            yaml: document(server: "server:\n  limits:\n    max_connections_per_client: -1\n"),
            expected: "test.yaml:4:33: server.limits.max_connections_per_client: expected an integer from 0 to 1000000"),
        Fixture(
            rule: "max_connections_per_loop range",
            yaml: document(server: "server:\n  upstream:\n    max_connections_per_loop: 0\n"),
            expected:
                "test.yaml:4:31: server.upstream.max_connections_per_loop: expected an integer from 1 to 100000"),
        Fixture(
            rule: "tls min_version", yaml: document(server: "server:\n  tls: {certificate_file: /c.pem, private_key_file: /k.pem, min_version: \"1.1\"}\n"),
            expected: "test.yaml:3:74: server.tls.min_version: expected \"1.2\" or \"1.3\""),
        Fixture(
            rule: "tls alpn", yaml: document(server: "server:\n  tls: {certificate_file: /c.pem, private_key_file: /k.pem, alpn: [h3]}\n"),
            expected: "test.yaml:3:68: server.tls.alpn[0]: expected h2 or http/1.1"),
        Fixture(
            rule: "http2 streams", yaml: document(server: "server:\n  http2: {max_concurrent_streams: 0}\n"),
            expected: "test.yaml:3:35: server.http2.max_concurrent_streams: expected an integer from 1 to 10000"),
        Fixture(
            rule: "upstream_tls on http", yaml: "version: 1\nroutes:\n  - id: a\n    upstream: http://127.0.0.1:1\n    auth: none\n    upstream_tls: {insecure_skip_verify: true}\n",
            expected: "test.yaml:6:19: routes[0].upstream_tls: only meaningful with an https:// upstream"),
        Fixture(
            rule: "upstream_tls half a client pair", yaml: "version: 1\nroutes:\n  - id: a\n    upstream: https://127.0.0.1:1\n    auth: none\n    upstream_tls: {client_certificate_file: /c.pem}\n",
            expected: "test.yaml:6:19: routes[0].upstream_tls: set both client_certificate_file and client_key_file, or neither"),

        // providers
        Fixture(
            rule: "providers not a list", yaml: document(top: "providers: {}"),
            expected: "test.yaml:6:12: providers: expected a list"),
        Fixture(
            rule: "provider not a mapping", yaml: providerDocument("  - corp\n"),
            expected: "test.yaml:3:5: providers[0]: expected a mapping"),
        Fixture(
            rule: "unknown provider key", yaml: jwtDocument(provider: "    discovery: true\n"),
            expected: "test.yaml:5:5: providers[0].discovery: unknown key"),
        Fixture(
            rule: "provider id missing", yaml: providerDocument("  - issuer: https://idp.example.com\n"),
            expected: "test.yaml:3:5: providers[0].id: required"),
        Fixture(
            rule: "provider id characters",
            yaml: providerDocument("  - id: my idp\n    issuer: https://idp.example.com\n"),
            expected: "test.yaml:3:9: providers[0].id: expected 1 to 64 letters, digits, '-', '_' or '.'"),
        Fixture(
            rule: "provider id duplicate",
            yaml: providerDocument(
                "  - id: corp\n    issuer: https://a.example.com\n  - id: corp\n    issuer: https://b.example.com\n"),
            expected: "test.yaml:5:9: providers[1].id: duplicate provider id 'corp' (already used by providers[0])"),
        Fixture(
            rule: "issuer missing", yaml: providerDocument("  - id: corp\n"),
            expected: "test.yaml:3:5: providers[0].issuer: required"),
        Fixture(
            rule: "issuer null", yaml: providerDocument("  - id: corp\n    issuer:\n"),
            expected: "test.yaml:4:12: providers[0].issuer: required"),
        Fixture(
            rule: "issuer without scheme", yaml: providerDocument("  - id: corp\n    issuer: idp.example.com\n"),
            expected: "test.yaml:4:13: providers[0].issuer: expected an https:// URL (http:// only for a loopback host)"
        ),
        Fixture(
            rule: "issuer with userinfo",
            yaml: providerDocument("  - id: corp\n    issuer: https://user@idp.example.com\n"),
            expected: "test.yaml:4:13: providers[0].issuer: expected an https:// URL (http:// only for a loopback host)"
        ),
        Fixture(
            rule: "issuer plain http", yaml: providerDocument("  - id: corp\n    issuer: http://idp.example.com\n"),
            expected:
                "test.yaml:4:13: providers[0].issuer: http:// is only allowed for a loopback host (127.0.0.0/8, ::1 or localhost); use https://"
        ),
        Fixture(
            rule: "issuer plain http on a lookalike host",
            yaml: providerDocument("  - id: corp\n    issuer: http://localhost.example.com:8080\n"),
            expected:
                "test.yaml:4:13: providers[0].issuer: http:// is only allowed for a loopback host (127.0.0.0/8, ::1 or localhost); use https://"
        ),
        Fixture(
            rule: "issuer with query",
            yaml: providerDocument("  - id: corp\n    issuer: \"https://idp.example.com/?tenant=a\"\n"),
            expected: "test.yaml:4:13: providers[0].issuer: must not contain a query or fragment (? or #)"),
        Fixture(
            rule: "issuer with fragment",
            yaml: providerDocument("  - id: corp\n    issuer: \"https://idp.example.com/#x\"\n"),
            expected: "test.yaml:4:13: providers[0].issuer: must not contain a query or fragment (? or #)"),
        Fixture(
            rule: "jwks_uri plain http", yaml: jwtDocument(provider: "    jwks_uri: http://keys.example.com/jwks\n"),
            expected:
                "test.yaml:5:15: providers[0].jwks_uri: http:// is only allowed for a loopback host (127.0.0.0/8, ::1 or localhost); use https://"
        ),
        Fixture(
            rule: "jwks_uri not a URL", yaml: jwtDocument(provider: "    jwks_uri: ftp://keys.example.com/jwks\n"),
            expected:
                "test.yaml:5:15: providers[0].jwks_uri: expected an https:// URL, http:// on a loopback host, or file:///absolute/path"
        ),
        Fixture(
            rule: "jwks_uri relative file", yaml: jwtDocument(provider: "    jwks_uri: file://keys.json\n"),
            expected:
                "test.yaml:5:15: providers[0].jwks_uri: expected file:///absolute/path (no host, query or fragment)"
        ),
        Fixture(
            rule: "jwks_uri with fragment",
            yaml: jwtDocument(provider: "    jwks_uri: \"https://idp.example.com/k#a\"\n"),
            expected: "test.yaml:5:15: providers[0].jwks_uri: must not contain a fragment (#)"),
        Fixture(
            rule: "ca_file empty", yaml: jwtDocument(provider: "    ca_file: \"\"\n"),
            expected: "test.yaml:5:14: providers[0].ca_file: must not be empty"),
        Fixture(
            rule: "client secret twice",
            yaml: jwtDocument(
                provider: "    client_secret: s3cret\n    client_secret_file: /run/secrets/oidc\n"),
            expected:
                "test.yaml:6:25: providers[0].client_secret_file: set client_secret or client_secret_file, not both",
            files: ["/run/secrets/oidc": "s3cret\n"]),
        Fixture(
            rule: "client secret file unreadable",
            yaml: jwtDocument(provider: "    client_secret_file: /run/secrets/oidc\n"),
            expected: "test.yaml:5:25: providers[0].client_secret_file: cannot read file: no such file"),
        Fixture(
            rule: "client secret file empty",
            yaml: jwtDocument(provider: "    client_secret_file: /run/secrets/oidc\n"),
            expected: "test.yaml:5:25: providers[0].client_secret_file: the file is empty",
            files: ["/run/secrets/oidc": "\n"]),
        Fixture(
            rule: "client secret from an unset variable", yaml: jwtDocument(provider: "    client_secret: ${SECRET}\n"),
            expected: "test.yaml:5:20: providers[0].client_secret: environment variable SECRET is not set"),
        Fixture(
            rule: "token endpoint auth", yaml: jwtDocument(provider: "    token_endpoint_auth: private_key_jwt\n"),
            expected:
                "test.yaml:5:26: providers[0].token_endpoint_auth: expected client_secret_basic or client_secret_post"),
        Fixture(
            rule: "scope with a space", yaml: jwtDocument(provider: "    scopes: [openid, \"email profile\"]\n"),
            expected: "test.yaml:5:22: providers[0].scopes[1]: expected a scope token (no spaces, \" or \\)"),
        Fixture(
            rule: "audience empty", yaml: jwtDocument(provider: "    audiences: [api, \"\"]\n"),
            expected: "test.yaml:5:22: providers[0].audiences[1]: must not be empty"),
        Fixture(
            rule: "audiences not a list", yaml: jwtDocument(provider: "    audiences: api\n"),
            expected: "test.yaml:5:16: providers[0].audiences: expected a list"),
        Fixture(
            rule: "algorithm unknown", yaml: jwtDocument(provider: "    algorithms: [RS256, rs512]\n"),
            expected:
                "test.yaml:5:25: providers[0].algorithms[1]: unknown algorithm 'rs512' (expected RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384 or HS512)"
        ),
        Fixture(
            rule: "algorithm none", yaml: jwtDocument(provider: "    algorithms: [RS256, None]\n"),
            expected: "test.yaml:5:25: providers[0].algorithms[1]: alg none is never accepted"),
        Fixture(
            rule: "algorithm none even with a shared secret",
            yaml: jwtDocument(provider: "    shared_secret_file: /run/secrets/hmac\n    algorithms: [HS256, none]\n"),
            expected: "test.yaml:6:25: providers[0].algorithms[1]: alg none is never accepted",
            files: ["/run/secrets/hmac": String(repeating: "k", count: 32)]),
        Fixture(
            rule: "HMAC without a shared secret", yaml: jwtDocument(provider: "    algorithms: [RS256, HS256]\n"),
            expected: "test.yaml:5:25: providers[0].algorithms[1]: HS256 requires shared_secret_file"),
        Fixture(
            rule: "HS512 without a shared secret", yaml: jwtDocument(provider: "    algorithms: [HS512]\n"),
            expected: "test.yaml:5:18: providers[0].algorithms[0]: HS512 requires shared_secret_file"),
        Fixture(
            rule: "algorithms empty", yaml: jwtDocument(provider: "    algorithms: []\n"),
            expected:
                "test.yaml:5:17: providers[0].algorithms: expected at least one algorithm (omit the key for the default)"
        ),
        Fixture(
            rule: "shared secret too short", yaml: jwtDocument(provider: "    shared_secret_file: /run/secrets/hmac\n"),
            expected:
                "test.yaml:5:25: providers[0].shared_secret_file: the shared secret must be at least 32 bytes (the file has 31)",
            files: ["/run/secrets/hmac": String(repeating: "k", count: 31)]),
        Fixture(
            rule: "HS512 with a secret shorter than 64 bytes",
            yaml: jwtDocument(provider: "    shared_secret_file: /run/secrets/hmac\n    algorithms: [HS256, HS512]\n"),
            expected:
                "test.yaml:6:25: providers[0].algorithms[1]: HS512 needs a shared secret of at least 64 bytes (the file has 40)",
            files: ["/run/secrets/hmac": String(repeating: "k", count: 40)]),
        Fixture(
            rule: "shared secret unreadable",
            yaml: jwtDocument(provider: "    shared_secret_file: /run/secrets/hmac\n"),
            expected: "test.yaml:5:25: providers[0].shared_secret_file: cannot read file: no such file"),
        Fixture(
            rule: "clock skew too large", yaml: jwtDocument(provider: "    clock_skew: 6m\n"),
            expected: "test.yaml:5:17: providers[0].clock_skew: must be between 0s and 5m"),
        Fixture(
            rule: "clock skew without unit", yaml: jwtDocument(provider: "    clock_skew: 60\n"),
            expected:
                "test.yaml:5:17: providers[0].clock_skew: expected a duration such as 30s, 5m, 1h30m or 250ms"),
        Fixture(
            rule: "claim path empty segment",
            yaml: jwtDocument(provider: "    claims:\n      groups: realm_access..roles\n"),
            expected:
                "test.yaml:6:15: providers[0].claims.groups: expected a claim name or dotted path (letters, digits, _, : and -, separated by .) or a URL claim name"
        ),
        Fixture(
            rule: "claim path with a slash",
            yaml: jwtDocument(provider: "    claims:\n      groups: \"example.com/roles\"\n"),
            expected:
                "test.yaml:6:15: providers[0].claims.groups: expected a claim name or dotted path (letters, digits, _, : and -, separated by .) or a URL claim name"
        ),
        Fixture(
            rule: "unknown claims key", yaml: jwtDocument(provider: "    claims: {name: name}\n"),
            expected: "test.yaml:5:14: providers[0].claims.name: unknown key"),
        Fixture(
            rule: "accepted types not a list", yaml: jwtDocument(provider: "    accepted_types: at+jwt\n"),
            expected: "test.yaml:5:21: providers[0].accepted_types: expected a list"),
        Fixture(
            rule: "extra auth param reserved", yaml: jwtDocument(provider: "    extra_auth_params: {state: x}\n"),
            expected: "test.yaml:5:25: providers[0].extra_auth_params.state: set by Gatehouse, cannot be overridden"),
        Fixture(
            rule: "extra auth param not a string",
            yaml: jwtDocument(provider: "    extra_auth_params: {prompt: [login]}\n"),
            expected: "test.yaml:5:33: providers[0].extra_auth_params.prompt: expected a string"),

        // routes[] authorization
        Fixture(
            rule: "jwt route without providers",
            yaml: "version: 1\nroutes:\n  - id: api\n    upstream: http://127.0.0.1:4000\n    auth: jwt\n",
            expected: "test.yaml:5:11: routes[0].auth: auth: jwt needs at least one provider under providers:"),
        Fixture(
            rule: "session route with an empty provider list",
            yaml:
                "version: 1\nproviders: []\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth: session\n",
            expected: "test.yaml:6:11: routes[0].auth: auth: session needs at least one provider under providers:"),
        Fixture(
            rule: "route provider unknown", yaml: jwtDocument(route: "    providers: [corp, other]\n"),
            expected: "test.yaml:9:23: routes[0].providers[1]: unknown provider 'other'"),
        Fixture(
            rule: "route providers empty", yaml: jwtDocument(route: "    providers: []\n"),
            expected:
                "test.yaml:9:16: routes[0].providers: expected at least one provider id (omit the key to accept every provider)"
        ),
        Fixture(
            rule: "allow on a public route", yaml: document(route: "    allow: {any_group: [staff]}\n"),
            expected: "test.yaml:6:5: routes[0].allow: only meaningful on jwt or session routes"),
        Fixture(
            rule: "providers on a public route", yaml: document(route: "    providers: [corp]\n"),
            expected: "test.yaml:6:5: routes[0].providers: only meaningful on jwt or session routes"),
        Fixture(
            rule: "pass_access_token on a public route", yaml: document(route: "    pass_access_token: false\n"),
            expected: "test.yaml:6:5: routes[0].pass_access_token: only meaningful on jwt or session routes"),
        Fixture(
            rule: "pass_access_token yes refused", yaml: jwtDocument(route: "    pass_access_token: yes\n"),
            expected: "test.yaml:9:24: routes[0].pass_access_token: expected true or false"),
        Fixture(
            rule: "allow not a mapping", yaml: jwtDocument(route: "    allow: [staff]\n"),
            expected: "test.yaml:9:12: routes[0].allow: expected a mapping"),
        Fixture(
            rule: "unknown allow key", yaml: jwtDocument(route: "    allow:\n      groups: [staff]\n"),
            expected: "test.yaml:10:7: routes[0].allow.groups: unknown key"),
        Fixture(
            rule: "allow group empty", yaml: jwtDocument(route: "    allow:\n      any_group: [\"\"]\n"),
            expected: "test.yaml:10:19: routes[0].allow.any_group[0]: must not be empty"),
        Fixture(
            rule: "email domain with @",
            yaml: jwtDocument(route: "    allow:\n      email_domains: [\"@example.com\"]\n"),
            expected:
                "test.yaml:10:23: routes[0].allow.email_domains[0]: expected a domain without @ (example.com, not @example.com)"
        ),
        Fixture(
            rule: "email without @", yaml: jwtDocument(route: "    allow:\n      emails: [example.com]\n"),
            expected: "test.yaml:10:16: routes[0].allow.emails[0]: expected an email address such as alice@example.com"),
        Fixture(
            rule: "allow scope with a space",
            yaml: jwtDocument(route: "    allow:\n      scopes: [\"orders.read orders.write\"]\n"),
            expected: "test.yaml:10:16: routes[0].allow.scopes[0]: expected a scope token (no spaces, \" or \\)"),
        Fixture(
            rule: "allow claim value not a scalar",
            yaml: jwtDocument(route: "    allow:\n      claims: {tenant: [a, b]}\n"),
            expected: "test.yaml:10:24: routes[0].allow.claims.tenant: expected a string, number or boolean"),
        Fixture(
            rule: "allow claim value null", yaml: jwtDocument(route: "    allow:\n      claims: {tenant: null}\n"),
            expected: "test.yaml:10:24: routes[0].allow.claims.tenant: expected a string, number or boolean"),
        Fixture(
            rule: "allow claim path invalid", yaml: jwtDocument(route: "    allow:\n      claims: {\"a b\": x}\n"),
            expected:
                "test.yaml:10:16: routes[0].allow.claims.a b: expected a claim name or dotted path (letters, digits, _, : and -, separated by .) or a URL claim name"
        ),
        Fixture(
            rule: "route identity header reserved",
            yaml: jwtDocument(route: "    identity_headers:\n      Host: user\n"),
            expected: "test.yaml:10:7: routes[0].identity_headers.Host: reserved header, cannot carry identity"),

        // identity_headers
        Fixture(
            rule: "identity header name", yaml: document(top: "identity_headers:\n  \"X User\": user"),
            expected: "test.yaml:7:3: identity_headers.X User: not a valid HTTP header name"),
        Fixture(
            rule: "identity header claim", yaml: document(top: "identity_headers:\n  X-User: sub/x"),
            expected:
                "test.yaml:7:11: identity_headers.X-User: expected an identity field: user, email, groups, preferred_username or a claim name or dotted path (letters, digits, _, :, - and .) or a URL claim name"
        ),
        Fixture(
            rule: "identity header managed by Gatehouse", yaml: document(top: "identity_headers:\n  X_Forwarded_For: user"),
            expected: "test.yaml:7:3: identity_headers.X_Forwarded_For: reserved header, cannot carry identity"),
        Fixture(
            rule: "identity header in the X-Auth-Request family",
            yaml: document(top: "identity_headers:\n  X-Auth-Request-User: user"),
            expected: "test.yaml:7:3: identity_headers.X-Auth-Request-User: reserved header, cannot carry identity"),
        Fixture(
            rule: "identity header alias duplicate", yaml: document(top: "identity_headers:\n  X-User: user\n  X_User: email"),
            expected:
                "test.yaml:8:3: identity_headers.X_User: same header as X-User (names are compared case-insensitively, with _ and . read as -)"
        ),
        Fixture(
            rule: "identity header reserved", yaml: document(top: "identity_headers:\n  Host: user"),
            expected: "test.yaml:7:3: identity_headers.Host: reserved header, cannot carry identity"),
        Fixture(
            rule: "identity header case-insensitive duplicate",
            yaml: document(top: "identity_headers:\n  X-User: user\n  x-user: email"),
            expected:
                "test.yaml:8:3: identity_headers.x-user: same header as X-User (names are compared case-insensitively, with _ and . read as -)"
        ),
        Fixture(
            rule: "identity headers not a mapping", yaml: document(top: "identity_headers: [user]"),
            expected: "test.yaml:6:19: identity_headers: expected a mapping"),

        // routes[]
        Fixture(
            rule: "unknown route key", yaml: document(route: "    timeout: 5s\n"),
            expected: "test.yaml:6:5: routes[0].timeout: unknown key"),
        Fixture(
            rule: "route id missing",
            yaml: "version: 1\nroutes:\n  - upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:3:5: routes[0].id: required"),
        Fixture(
            rule: "route id not a string",
            yaml: "version: 1\nroutes:\n  - id: [a]\n    upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:3:9: routes[0].id: expected a string"),
        Fixture(
            rule: "route id characters",
            yaml: "version: 1\nroutes:\n  - id: my app\n    upstream: http://127.0.0.1:3000\n    auth: none\n",
            expected: "test.yaml:3:9: routes[0].id: expected 1 to 64 letters, digits, '-', '_' or '.'"),
        Fixture(
            rule: "route id duplicate",
            yaml: document(
                route:
                    "    match: {path: /a}\n  - id: app\n    match: {path: /b}\n    upstream: http://127.0.0.1:3001\n    auth: none\n"
            ),
            expected: "test.yaml:7:9: routes[1].id: duplicate route id 'app' (already used by routes[0])"),
        Fixture(
            rule: "same match twice",
            yaml: document(route: "  - id: other\n    upstream: http://127.0.0.1:3001\n    auth: none\n"),
            expected: "test.yaml:6:5: routes[1].match: same match as routes[0], so this route is never used"),
        Fixture(
            rule: "upstream missing", yaml: "version: 1\nroutes:\n  - id: app\n    auth: none\n",
            expected: "test.yaml:3:5: routes[0].upstream: required"),
        Fixture(
            rule: "upstream not http",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: ftp://127.0.0.1\n    auth: none\n",
            expected: "test.yaml:4:15: routes[0].upstream: not an http(s) URL"),
        Fixture(
            rule: "upstream with query",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: http://h/?a=b\n    auth: none\n",
            expected: "test.yaml:4:15: routes[0].upstream: not an http(s) URL"),
        Fixture(
            rule: "auth missing", yaml: "version: 1\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n",
            expected: "test.yaml:3:5: routes[0].auth: required: none, jwt or session (deny by default)"),
        Fixture(
            rule: "auth null",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth:\n",
            expected: "test.yaml:5:10: routes[0].auth: required: none, jwt or session (deny by default)"),
        Fixture(
            rule: "auth unknown",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: http://127.0.0.1:3000\n    auth: basic\n",
            expected: "test.yaml:5:11: routes[0].auth: expected none, jwt or session"),
        Fixture(
            rule: "boolean yes refused", yaml: document(route: "    preserve_host: yes\n"),
            expected: "test.yaml:6:20: routes[0].preserve_host: expected true or false"),
        Fixture(
            rule: "boolean on refused", yaml: document(route: "    allow_encoded_slashes: on\n"),
            expected: "test.yaml:6:28: routes[0].allow_encoded_slashes: expected true or false"),
        Fixture(
            rule: "route body limit", yaml: document(route: "    max_body_bytes: lots\n"),
            expected: "test.yaml:6:21: routes[0].max_body_bytes: expected a size such as 4096, 512KiB or 16MiB"),
        Fixture(
            rule: "route websocket not a boolean", yaml: document(route: "    websocket: sometimes\n"),
            expected: "test.yaml:6:16: routes[0].websocket: expected true or false"),

        // routes[].match
        Fixture(
            rule: "match not a mapping", yaml: document(route: "    match: /api\n"),
            expected: "test.yaml:6:12: routes[0].match: expected a mapping"),
        Fixture(
            rule: "unknown match key", yaml: document(route: "    match: {prefix: /api}\n"),
            expected: "test.yaml:6:13: routes[0].match.prefix: unknown key"),
        Fixture(
            rule: "match host invalid", yaml: document(route: "    match: {host: \"exa mple.com\"}\n"),
            expected: "test.yaml:6:19: routes[0].match.host: not a host name or *.suffix pattern"),
        Fixture(
            rule: "match host with port", yaml: document(route: "    match: {host: \"example.com:8080\"}\n"),
            expected: "test.yaml:6:19: routes[0].match.host: not a host name or *.suffix pattern"),
        Fixture(
            rule: "match host bad wildcard", yaml: document(route: "    match: {host: \"*example.com\"}\n"),
            expected: "test.yaml:6:19: routes[0].match.host: not a host name or *.suffix pattern"),
        Fixture(
            rule: "match path relative", yaml: document(route: "    match: {path: api}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: must start with /"),
        Fixture(
            rule: "match path dot segment", yaml: document(route: "    match: {path: /a/../b}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: must not contain . or .. segments"),
        Fixture(
            rule: "match path empty segment", yaml: document(route: "    match: {path: /a//b}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: must not contain empty segments (//)"),
        Fixture(
            rule: "match path percent", yaml: document(route: "    match: {path: /a%2Fb}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: must not contain %-escapes (write the decoded path)"),
        Fixture(
            rule: "match path query", yaml: document(route: "    match: {path: \"/a?b\"}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: must not contain a query or fragment (? or #)"),
        Fixture(
            rule: "match path space", yaml: document(route: "    match: {path: \"/a b\"}\n"),
            expected: "test.yaml:6:19: routes[0].match.path: contains a character that is not allowed in a URL path"),
        Fixture(
            rule: "methods lower case", yaml: document(route: "    match: {methods: [GET, post]}\n"),
            expected: "test.yaml:6:28: routes[0].match.methods[1]: expected an upper-case method such as GET"),
        Fixture(
            rule: "methods empty", yaml: document(route: "    match: {methods: []}\n"),
            expected:
                "test.yaml:6:22: routes[0].match.methods: expected at least one method (omit the key to allow any method)"
        ),

        // Interpolation
        Fixture(
            rule: "unset variable",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: ${UPSTREAM}\n    auth: none\n",
            expected: "test.yaml:4:15: routes[0].upstream: environment variable UPSTREAM is not set"),
        Fixture(
            rule: "unterminated reference",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: http://${HOST\n    auth: none\n",
            expected: "test.yaml:4:15: routes[0].upstream: unterminated ${ (missing })"),
        Fixture(
            rule: "invalid variable name",
            yaml: "version: 1\nroutes:\n  - id: app\n    upstream: \"${UP STREAM}\"\n    auth: none\n",
            expected:
                "test.yaml:4:15: routes[0].upstream: invalid environment variable reference ${UP STREAM} (use ${NAME} or ${NAME:-default})"
        ),
        Fixture(
            rule: "interpolated value is typed", yaml: document(server: "server:\n  workers: ${WORKERS}\n"),
            expected: "test.yaml:3:12: server.workers: expected auto or an integer from 1 to 256",
            environment: ["WORKERS": "many"]),
    ]

    @Test(arguments: fixtures)
    func reportsExactProblem(fixture: Fixture) {
        #expect(problems(fixture.yaml, environment: fixture.environment, files: fixture.files) == [fixture.expected])
    }
}
