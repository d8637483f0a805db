import GatehouseAuth
import GatehouseCore
import Logging
import NIOCore

/// The login flow's endpoints: start (redirect to the provider), callback (code exchange, ID token, session),
/// sign-out, and the ID-token check they share. The state they use lives in `BrowserLogin.swift`.
extension BrowserLogin {
    /// `/oauth2/start?rd=URL[&provider=id]`
    func start(_ request: Request, now: Int64) async -> Answer {
        guard let params = FormEncoding.decode(Substring(request.query ?? "")) else {
            return failure(400, "login_bad_request", "The sign-in link is malformed.", cookies: [])
        }
        let rd = validatedReturn((try? FormEncoding.single("rd", in: params).get()) ?? nil, rawHost: request.rawHost)
        let fails = failureCount(request.cookies)
        let retry = (try? FormEncoding.single("retry", in: params).get()) == "1"
        if fails >= Self.loopThreshold && !retry {
            return failure(
                409, "login_loop", "Signing in did not complete.", hint: LoginFailure.loopHint, returnTo: rd,
                cookies: [])
        }
        var cookies: [String] = []
        if retry, fails > 0 { cookies.append(deleteCookie(names.failureCounter)) }
        let requested = (try? FormEncoding.single("provider", in: params).get()) ?? nil
        guard let providerID = requested ?? defaultProviderID, let provider = providersByID[providerID],
            let clientID = provider.clientID
        else {
            return failure(
                400, "login_bad_request", "No identity provider is configured for sign-in.", returnTo: rd,
                cookies: cookies)
        }
        let meta: OIDCClient.Metadata
        do {
            meta = try await oidc.metadata(for: provider)
        } catch {
            logger.warning(
                "login: provider discovery failed", metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return failure(
                502, "login_provider_unavailable", "The identity provider cannot be reached right now.",
                byProvider: true, returnTo: rd, cookies: cookies)
        }
        let tx = LoginTransaction(
            state: LoginRandom.token(), nonce: LoginRandom.token(), codeVerifier: LoginRandom.token(), returnURL: rd,
            providerID: provider.id, createdAt: now)
        guard let sealed = sealer.seal(tx.encoded(), purpose: .login) else {
            return failure(
                500, "login_internal", "Gatehouse could not start the sign-in.", returnTo: rd, cookies: cookies)
        }
        // Parallel logins (tabs) each get their own cookie; beyond the cap the oldest go, expired ones always.
        var live: [(name: String, createdAt: Int64)] = []
        for c in request.cookies where c.name.hasPrefix(names.transactionPrefix) {
            if live.count < 16, let plain = sealer.open(c.value, purpose: .login),
                let old = LoginTransaction.decode(plain), old.isLive(now: now)
            {
                live.append((c.name, old.createdAt))
            } else {
                cookies.append(deleteCookie(c.name))
            }
        }
        live.sort { $0.createdAt < $1.createdAt }
        for old in live.prefix(max(0, live.count - (SessionCookieNames.maxTransactions - 1))) {
            cookies.append(deleteCookie(old.name))
        }
        cookies.append(
            Cookies.setCookie(
                name: names.transactionPrefix + LoginRandom.transactionID(for: tx.state), value: sealed,
                maxAge: LoginTransaction.lifetime,
                secure: session.secure, sameSite: transactionSameSite, domain: session.domain))
        var query: [(String, String)] = [
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI(request)),
            ("scope", provider.scopes.joined(separator: " ")), ("state", tx.state), ("nonce", tx.nonce),
            ("code_challenge", LoginRandom.codeChallenge(for: tx.codeVerifier)), ("code_challenge_method", "S256"),
        ]
        for (k, v) in provider.extraAuthParams.sorted(by: { $0.key < $1.key }) { query.append((k, v)) }
        let separator = meta.authorizationEndpoint.contains("?") ? "&" : "?"
        return redirect(meta.authorizationEndpoint + separator + FormEncoding.encode(query), cookies: cookies)
    }

    /// `/oauth2/callback?code=...&state=...`
    func callback(_ request: Request, now: Int64) async -> Answer {
        let fails = failureCount(request.cookies)
        var cookies = [
            Cookies.setCookie(
                name: names.failureCounter, value: String(min(fails + 1, 99)), maxAge: 300, secure: session.secure,
                sameSite: transactionSameSite, domain: session.domain)
        ]
        let loopHint = fails + 1 >= Self.loopThreshold ? LoginFailure.loopHint : nil
        guard let params = FormEncoding.decode(Substring(request.query ?? "")) else {
            return failure(400, "login_bad_request", "The sign-in response is malformed.", cookies: cookies)
        }
        let state: String?
        let code: String?
        let error: String?
        let issuerParameter: String?
        do {
            state = try FormEncoding.single("state", in: params).get()
            code = try FormEncoding.single("code", in: params).get()
            error = try FormEncoding.single("error", in: params).get()
            issuerParameter = try FormEncoding.single("iss", in: params).get()
        } catch {
            return failure(
                400, "login_bad_request", "The sign-in response repeats the parameter \(error.name).", cookies: cookies)
        }
        // The transaction this callback belongs to (its cookie is removed whatever happens next).
        var tx: LoginTransaction?
        var txCookieFound = false
        if let state, !state.isEmpty, state.utf8.count <= 512 {
            let name = names.transactionPrefix + LoginRandom.transactionID(for: state)
            let matching = request.cookies.filter { $0.name == name }
            // Two cookies of one name: one was planted (cookie tossing from a sibling domain); trust neither.
            if matching.count == 1, let c = matching.first {
                txCookieFound = true
                cookies.append(deleteCookie(name))
                if let plain = sealer.open(c.value, purpose: .login), let t = LoginTransaction.decode(plain),
                    LoginRandom.constantTimeEqual(t.state, state), t.isLive(now: now)
                {
                    tx = t
                }
            }
        }
        let returnTo = tx?.returnURL ?? "/"
        if let error {
            let description = OIDCClient.sanitize(error)
            let status = error == "access_denied" ? 403 : 400
            return failure(
                status, "login_provider_error", "The identity provider did not sign you in (\(description)).",
                byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        guard let state, let code, !code.isEmpty else {
            return failure(
                400, "login_bad_request", "The sign-in response lacks its code or state.", returnTo: returnTo,
                cookies: cookies)
        }
        guard txCookieFound else {
            return failure(
                400, "login_state_unknown",
                "This sign-in was not started in this browser, or it took longer than 10 minutes.",
                hint: loopHint ?? LoginFailure.cookieHint, cookies: cookies)
        }
        guard let tx else {
            return failure(
                400, "login_state_mismatch", "The sign-in response does not match a sign-in in progress.",
                hint: loopHint, cookies: cookies)
        }
        guard let provider = providersByID[tx.providerID] else {
            return failure(
                400, "login_state_mismatch", "The sign-in names an unknown identity provider.", cookies: cookies)
        }
        // RFC 9207 / RFC 9700 §4.4: a response naming another issuer than the one this login went to is a
        // mix-up attempt.
        if let issuerParameter, issuerParameter != provider.issuer {
            return failure(
                400, "login_issuer_mismatch", "The sign-in response comes from another identity provider.",
                returnTo: returnTo, cookies: cookies)
        }
        // Consumed once: a replayed callback URL fails even with the old cookie.
        let fresh = consumed.withLockedValue { used -> Bool in
            if let until = used[state], until > now { return false }
            if used.count >= Self.maxConsumed { used = used.filter { $0.value > now } }
            // Full of live entries (a flood of minted logins): the transaction cookie is deleted and the code is
            // single-use at the provider, which still stops a replay.
            if used.count < Self.maxConsumed { used[state] = tx.createdAt + LoginTransaction.lifetime }
            return true
        }
        guard fresh else {
            return failure(
                400, "login_replayed", "This sign-in response was already used.", returnTo: returnTo, cookies: cookies)
        }
        let tokens: OIDCClient.TokenResponse
        do {
            tokens = try await oidc.exchangeCode(
                code, verifier: tx.codeVerifier, redirectURI: redirectURI(request), provider: provider)
        } catch OIDCClient.Failure.refused(let why) {
            logger.warning("login: code exchange refused", metadata: ["provider": "\(provider.id)", "error": "\(why)"])
            return failure(
                400, "login_code_refused", "The identity provider refused the sign-in code (\(why)).", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        } catch {
            logger.warning(
                "login: code exchange failed", metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            return failure(
                502, "login_provider_unavailable", "The identity provider cannot be reached right now.",
                byProvider: true, returnTo: returnTo, cookies: cookies)
        }
        guard let idToken = tokens.idToken else {
            return failure(
                502, "login_id_token_invalid", "The identity provider sent no ID token.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        var claims: [String: JSONValue]
        switch await validateIDToken(idToken, accessToken: tokens.accessToken, nonce: tx.nonce, provider: provider) {
        case .valid(let c): claims = c
        case .unknownKeyID, .rejected:
            logger.warning("login: ID token did not validate", metadata: ["provider": "\(provider.id)"])
            return failure(
                502, "login_id_token_invalid", "The identity provider's ID token did not validate.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        if oidc.cachedMetadata(for: provider.id)?.userinfoEndpoint != nil {
            do {
                let info = try await oidc.userinfo(accessToken: tokens.accessToken, provider: provider)
                guard info["sub"] == claims["sub"] else {
                    return failure(
                        502, "login_userinfo_mismatch", "The identity provider's user info names another user.",
                        byProvider: true, returnTo: returnTo, cookies: cookies)
                }
                for (k, v) in info where claims[k] == nil { claims[k] = v }
            } catch {
                logger.warning(
                    "login: userinfo failed; using the ID token's claims",
                    metadata: ["provider": "\(provider.id)", "error": "\(error)"])
            }
        }
        guard provider.claims.mappedUser(in: .object(claims)) != nil else {
            logger.warning("login: the provider named no user (claims.user)", metadata: ["provider": "\(provider.id)"])
            return failure(
                502, "login_no_subject", "The identity provider named no user for this sign-in.", byProvider: true,
                returnTo: returnTo, cookies: cookies)
        }
        let atExpiry = now + max(Self.minimumTokenLifetime, tokens.expiresIn ?? 300)
        var record = SessionRecord(
            providerID: provider.id, sessionID: LoginRandom.token(bytes: 12),
            claims: SessionRecord.reduce(claims, keeping: neededClaims),
            createdAt: now, expiresAt: now + session.lifetime.nanoseconds / 1_000_000_000,
            accessTokenExpiresAt: atExpiry,
            accessToken: keepAccessToken ? tokens.accessToken : nil,
            refreshToken: session.refresh ? tokens.refreshToken : nil,
            idToken: oidc.cachedMetadata(for: provider.id)?.endSessionEndpoint != nil ? idToken : nil)
        var sealed = sealer.seal(record.encoded(), purpose: .session)
        if let s = sealed, names.split(s) == nil, record.idToken != nil {
            record.idToken = nil  // sign-out then goes without id_token_hint rather than failing the login
            sealed = sealer.seal(record.encoded(), purpose: .session)
        }
        guard let sealed,
            let sessionCookies = sessionCookies(sealed: sealed, record: record, request: request.cookies, now: now)
        else {
            return failure(
                500, "login_session_too_large", "The session is too large for cookies.", returnTo: returnTo,
                cookies: cookies)
        }
        let cookieBytes = request.cookies.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 3 }
        if cookieBytes + sealed.utf8.count > 8192 {
            logger.warning(
                "large Cookie header for this host", metadata: ["bytes": "\(cookieBytes + sealed.utf8.count)"])
        }
        cookies[0] = deleteCookie(names.failureCounter)
        logger.info(
            "login succeeded",
            metadata: [
                "provider": "\(provider.id)", "user": "\(record.identity(mapping: provider.claims).user ?? "-")",
                "session": "\(record.sessionID.prefix(8))",
            ])
        if session.sameSite == .strict {
            // This response ends a navigation that started on the provider's site, so a 302 onwards would still
            // be cross-site and the browser would leave the new Strict cookie off it (a login loop). A page of our
            // own that moves on starts a same-site navigation, which carries it.
            let escaped = LoginPage.escape(returnTo)
            let page = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=\(escaped)">
                <title>Signed in</title></head><body><p>Signed in. <a href="\(escaped)">Continue</a></p></body></html>

                """
            return Answer(
                result: .success(
                    HTTPErrorResponse(
                        status: 200, headers: [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")],
                        body: page,
                        closeConnection: false, contentType: "text/html; charset=utf-8")),
                cookies: cookies + sessionCookies)
        }
        return redirect(returnTo, cookies: cookies + sessionCookies)
    }

    /// `/oauth2/sign_out?rd=URL`: clears every Gatehouse cookie, then RP-initiated logout at the provider when
    /// it supports it, else the validated return URL.
    func signOut(_ request: Request, record: SessionRecord?) async -> Answer {
        let params = FormEncoding.decode(Substring(request.query ?? "")) ?? []
        let rdParam = (try? FormEncoding.single("rd", in: params).get()) ?? nil
        let rd = validatedReturn(rdParam ?? login.postLogoutRedirectURL, rawHost: request.rawHost)
        let cookies = clearingCookies(request: request.cookies, all: true)
        guard let record, let provider = providersByID[record.providerID], let clientID = provider.clientID,
            let meta = try? await oidc.metadata(for: provider), let endSession = meta.endSessionEndpoint
        else { return redirect(rd, cookies: cookies) }
        let absolute = rd.hasPrefix("/") ? "\(request.scheme)://\(request.rawHost ?? "localhost")\(rd)" : rd
        var query: [(String, String)] = [("client_id", clientID), ("post_logout_redirect_uri", absolute)]
        if let idToken = record.idToken { query.insert(("id_token_hint", idToken), at: 0) }
        let separator = endSession.contains("?") ? "&" : "?"
        return redirect(endSession + separator + FormEncoding.encode(query), cookies: cookies)
    }

    func validateIDToken(_ idToken: String, accessToken: String?, nonce: String?, provider: ProviderConfig) async
        -> IDTokenValidator.Outcome
    {
        let validator = IDTokenValidator()
        var outcome = validator.validate(
            idToken: idToken, accessToken: accessToken, nonce: nonce, provider: provider,
            keys: keyStore.keys(for: provider.id), now: Self.epochNow())
        if case .unknownKeyID = outcome, await keyStore.refreshForUnknownKeyID(providerID: provider.id) {
            outcome = validator.validate(
                idToken: idToken, accessToken: accessToken, nonce: nonce, provider: provider,
                keys: keyStore.keys(for: provider.id), now: Self.epochNow())
        }
        return outcome
    }
}
