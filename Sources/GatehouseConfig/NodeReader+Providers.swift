import GatehouseCore
import Yams

/// `providers:` — the identity providers whose tokens Gatehouse trusts. Each needs a unique id and an issuer;
/// everything else has a default (`ProviderConfig.init`). Secret files are read here, once, so that a missing
/// or short secret stops the start instead of failing every request.
extension NodeReader {
    static let providerKeys: Set<String> = [
        "id", "issuer", "jwks_uri", "ca_file", "client_id", "client_secret", "client_secret_file",
        "token_endpoint_auth", "scopes", "audiences", "algorithms", "shared_secret_file", "clock_skew", "claims",
        "accepted_types", "extra_auth_params",
    ]
    static let claimMappingKeys: Set<String> = ["user", "email", "groups", "preferred_username"]
    static let claimPathExpectation =
        "expected a claim name or dotted path (letters, digits, _, : and -, separated by .) or a URL claim name"
    static let scopeExpectation = "expected a scope token (no spaces, \" or \\)"
    /// Tolerated clock difference between Gatehouse and the issuer; beyond 5 minutes an expired token lives on.
    static let clockSkewRange = GatehouseCore.Duration.seconds(0)...GatehouseCore.Duration.seconds(300)
    /// RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output (32 bytes for HS256).
    static let minSharedSecretBytes = 32
    /// Authorization-request parameters Gatehouse sets itself: overriding them would break the login's
    /// protections (state, nonce, PKCE) or its redirect.
    static let reservedAuthParams: Set<String> = [
        "client_id", "code_challenge", "code_challenge_method", "nonce", "redirect_uri", "response_type", "scope",
        "state",
    ]

    /// What the routes need to know about the `providers:` section.
    struct DeclaredProviders {
        /// Every syntactically valid id, also of providers that have other problems (no cascading problems).
        var ids: Set<String> = []
        /// False when the section is absent, null or an empty list.
        var any = false
    }

    mutating func readProviders(_ node: Node, path: String) -> ([ProviderConfig], DeclaredProviders) {
        var declared = DeclaredProviders()
        guard let items = list(node, path: path) else {
            declared.any = true
            return ([], declared)
        }
        declared.any = !items.isEmpty
        var firstIndex: [String: Int] = [:]
        var providers: [ProviderConfig] = []
        for (index, item) in items.enumerated() {
            if let provider = readProvider(
                item, path: "\(path)[\(index)]", index: index, firstIndex: &firstIndex, declared: &declared)
            {
                providers.append(provider)
            }
        }
        return (providers, declared)
    }

    private mutating func readProvider(
        _ node: Node, path: String, index: Int, firstIndex: inout [String: Int], declared: inout DeclaredProviders
    ) -> ProviderConfig? {
        guard let fields = readMapping(node, path: path, known: Self.providerKeys) else { return nil }
        var id: String?
        if let idNode = required(fields, "id"), let text = string(idNode, path: fields.path("id")) {
            if !Syntax.isRouteID(text) {
                report("expected 1 to 64 letters, digits, '-', '_' or '.'", at: fields.path("id"), node: idNode)
            } else if let first = firstIndex[text] {
                report(
                    "duplicate provider id '\(text)' (already used by providers[\(first)])", at: fields.path("id"),
                    node: idNode)
            } else {
                firstIndex[text] = index
                declared.ids.insert(text)
                id = text
            }
        }
        var issuer: String?
        if let issuerNode = required(fields, "issuer"), let text = string(issuerNode, path: fields.path("issuer")) {
            if let problem = ProviderURL.issuerProblem(text) {
                report(problem, at: fields.path("issuer"), node: issuerNode)
            } else {
                issuer = text
            }
        }

        var provider = ProviderConfig(id: id ?? "", issuer: issuer ?? "")
        if let node = fields.value("jwks_uri"), let text = string(node, path: fields.path("jwks_uri")) {
            if let problem = ProviderURL.jwksProblem(text) {
                report(problem, at: fields.path("jwks_uri"), node: node)
            } else {
                provider.jwksURI = text
            }
        }
        if let node = fields.value("ca_file") {
            provider.caFile = nonEmptyString(node, path: fields.path("ca_file"))
        }
        if let node = fields.value("client_id") {
            provider.clientID = nonEmptyString(node, path: fields.path("client_id"))
        }
        readClientSecret(fields, into: &provider)
        if let node = fields.value("token_endpoint_auth"),
            let value = choice(
                node, path: fields.path("token_endpoint_auth"),
                [TokenEndpointAuth.clientSecretBasic, .clientSecretPost],
                expectation: "expected client_secret_basic or client_secret_post")
        {
            provider.tokenEndpointAuth = value
        }
        if let node = fields.value("scopes"),
            let scopes = strings(
                node, path: fields.path("scopes"), check: { Syntax.isScopeToken($0) ? nil : Self.scopeExpectation })
        {
            provider.scopes = scopes
        }
        if let node = fields.value("audiences"), let audiences = strings(node, path: fields.path("audiences")) {
            provider.audiences = audiences
        }
        readSigning(fields, into: &provider)
        if let node = fields.value("clock_skew"),
            let skew = duration(node, path: fields.path("clock_skew"), allowZero: true)
        {
            if Self.clockSkewRange.contains(skew) {
                provider.clockSkew = skew
            } else {
                report("must be between 0s and 5m", at: fields.path("clock_skew"), node: node)
            }
        }
        if let node = fields.value("claims") {
            provider.claims = readClaimMapping(node, path: fields.path("claims"))
        }
        if let node = fields.value("accepted_types"), let types = strings(node, path: fields.path("accepted_types")) {
            provider.acceptedTypes = types
        }
        if let node = fields.value("extra_auth_params") {
            provider.extraAuthParams = readExtraAuthParams(node, path: fields.path("extra_auth_params"))
        }
        guard id != nil, issuer != nil else { return nil }
        return provider
    }

    /// `client_secret` or `client_secret_file` (its text, trailing line breaks removed), never both.
    private mutating func readClientSecret(_ fields: Fields, into provider: inout ProviderConfig) {
        let inline = fields.value("client_secret")
        if let node = inline {
            provider.clientSecret = nonEmptyString(node, path: fields.path("client_secret"))
        }
        guard let node = fields.value("client_secret_file") else { return }
        let path = fields.path("client_secret_file")
        guard inline == nil else {
            report("set client_secret or client_secret_file, not both", at: path, node: node)
            return
        }
        guard let bytes = secretFile(node, path: path) else { return }
        guard var text = String(validating: bytes, as: UTF8.self) else {
            report("the file is not valid UTF-8", at: path, node: node)
            return
        }
        // "\r\n" is one Character in Swift, so compare whole Characters.
        while let last = text.last, last == "\n" || last == "\r\n" || last == "\r" { text.removeLast() }
        guard !text.isEmpty else {
            report("the file is empty", at: path, node: node)
            return
        }
        provider.clientSecret = text
    }

    /// `shared_secret_file` and `algorithms`. HMAC algorithms are only ever accepted for a provider that has
    /// its own shared secret, and `none` never: otherwise a token could pick how (or whether) it is checked.
    private mutating func readSigning(_ fields: Fields, into provider: inout ProviderConfig) {
        let secretNode = fields.value("shared_secret_file")
        var secretLength = 0
        if let node = secretNode, let bytes = secretFile(node, path: fields.path("shared_secret_file")) {
            secretLength = bytes.count
            if bytes.count < Self.minSharedSecretBytes {
                report(
                    "the shared secret must be at least \(Self.minSharedSecretBytes) bytes (the file has \(bytes.count))",
                    at: fields.path("shared_secret_file"), node: node)
            } else {
                provider.sharedSecret = bytes
            }
        }
        let hasSharedSecret = secretNode != nil
        // RFC 7518 §3.2: the key must be at least as long as the hash output.
        func minimumSecret(_ algorithm: JWTAlgorithm) -> Int {
            switch algorithm {
            case .hs384: return 48
            case .hs512: return 64
            default: return Self.minSharedSecretBytes
            }
        }
        guard let node = fields.value("algorithms") else {
            // By default every HMAC algorithm the secret is long enough for.
            provider.algorithms = JWTAlgorithm.asymmetric.union(
                hasSharedSecret
                    ? JWTAlgorithm.allCases.filter { $0.isSymmetric && secretLength >= minimumSecret($0) } : [])
            return
        }
        let path = fields.path("algorithms")
        guard let items = list(node, path: path) else { return }
        guard !items.isEmpty else {
            report("expected at least one algorithm (omit the key for the default)", at: path, node: node)
            return
        }
        let names = JWTAlgorithm.allCases.map(\.rawValue)
        let expectation = "expected \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")"
        var algorithms: Set<JWTAlgorithm> = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = nonEmptyString(item, path: itemPath) else { continue }
            guard text.lowercased() != "none" else {
                report("alg none is never accepted", at: itemPath, node: item)
                continue
            }
            guard let algorithm = JWTAlgorithm(rawValue: text) else {
                report("unknown algorithm '\(text)' (\(expectation))", at: itemPath, node: item)
                continue
            }
            if algorithm.isSymmetric && !hasSharedSecret {
                report("\(text) requires shared_secret_file", at: itemPath, node: item)
                continue
            }
            if algorithm.isSymmetric, secretLength > 0, secretLength < minimumSecret(algorithm) {
                report(
                    "\(text) needs a shared secret of at least \(minimumSecret(algorithm)) bytes (the file has \(secretLength))",
                    at: itemPath, node: item)
                continue
            }
            algorithms.insert(algorithm)
        }
        provider.algorithms = algorithms
    }

    /// `claims:` — where the identity facts are; absent keys keep the defaults of `ClaimMapping`.
    private mutating func readClaimMapping(_ node: Node, path: String) -> ClaimMapping {
        var mapping = ClaimMapping()
        guard let fields = readMapping(node, path: path, known: Self.claimMappingKeys) else { return mapping }
        let targets: [(key: String, field: WritableKeyPath<ClaimMapping, String>)] = [
            ("user", \.user), ("email", \.email), ("groups", \.groups), ("preferred_username", \.preferredUsername),
        ]
        for target in targets {
            guard let node = fields.value(target.key) else { continue }
            let keyPath = fields.path(target.key)
            guard let text = string(node, path: keyPath, expected: Self.claimPathExpectation) else { continue }
            guard Syntax.isClaimPath(text) else {
                report(Self.claimPathExpectation, at: keyPath, node: node)
                continue
            }
            mapping[keyPath: target.field] = text
        }
        return mapping
    }

    /// `extra_auth_params:` — additional authorization-request parameters, name -> value.
    private mutating func readExtraAuthParams(_ node: Node, path: String) -> [String: String] {
        guard let entries = readEntries(node, path: path) else { return [:] }
        var params: [String: String] = [:]
        for entry in entries {
            let entryPath = Fields.join(path, entry.key)
            guard !entry.key.isEmpty else {
                report("expected a parameter name", at: entryPath, node: entry.keyNode)
                continue
            }
            guard !Self.reservedAuthParams.contains(entry.key) else {
                report("set by Gatehouse, cannot be overridden", at: entryPath, node: entry.keyNode)
                continue
            }
            if let value = scalarText(entry.value, path: entryPath, expected: "expected a string") {
                params[entry.key] = value
            }
        }
        return params
    }
}
