// Micro-benchmarks of the per-request pure pieces (release build):
//   swift build -c release --scratch-path .build-release --product gatehouse-microbench
//   .build-release/release/gatehouse-microbench
import Foundation
import GatehouseAuth
import GatehouseCore
import Logging
import NIOHTTP1

@inline(never)
func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }

func measure(_ name: String, iterations: Int = 200_000, _ body: () -> Void) {
    for _ in 0..<1000 { body() }
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations { body() }
    let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations)
    print(String(format: "%-44@ %9.0f ns/op", name as NSString, ns))
}

struct FixedSource: KeySource {
    let jwks: String
    func fetchKeySet(for provider: ProviderConfig) async throws -> (bytes: [UInt8], maxAge: GatehouseCore.Duration?) {
        (Array(jwks.utf8), nil)
    }
}

let signer = DevTokenSigner(kid: "k")
let now = Int64(Date().timeIntervalSince1970)
let token = try signer.sign(
    claimsJSON:
        #"{"iss":"https://i","aud":"api","sub":"alice","email":"alice@example.com","groups":["staff"],"exp":\#(now + 3600)}"#
)
let provider = ProviderConfig(id: "p", issuer: "https://i", audiences: ["api"])
let store = KeyStore(providers: [provider], source: FixedSource(jwks: signer.jwks), logger: Logger(label: "bench"))
_ = await store.refresh(providerID: "p")
let authenticator = BearerAuthenticator(store: store)
let cache = VerifiedTokenCache()
var headers = HTTPHeaders()
for (n, v) in [
    ("Host", "127.0.0.1:8080"), ("User-Agent", "wrk"), ("Accept", "*/*"),
    ("Accept-Encoding", "gzip"), ("Authorization", "Bearer " + token), ("X-Custom", "1"),
] { headers.add(name: n, value: v) }
let fields: HeaderFields = headers.map { (name: $0.name, value: $0.value) }
measure("HTTPHeaders -> HeaderFields") { blackHole(headers.map { (name: $0.name, value: $0.value) }) }
let route = RouteConfig(
    id: "r", upstream: UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000), auth: .jwt,
    allow: AllowRules(anyGroup: ["staff"]))
let rules = HeaderRules(identityHeaders: GatewayConfig.defaultIdentityHeaders, trustedProxies: [])

measure("RequestValidation.validate") {
    blackHole(
        try? RequestValidation.validate(
            head: .init(method: "GET", target: "/api/orders?x=1", versionMajor: 1, versionMinor: 1), headers: fields,
            maxHeaderBytes: 32768))
}
measure("BearerCredentials.extract") { blackHole(try? BearerCredentials.extract(headers: fields, query: "x=1")) }
guard case .verified(let identity, _) = authenticator.authenticate(token: token, allowed: nil, cache: cache, now: now)
else {
    fatalError("token did not verify")
}
measure("authenticate (cache hit)") {
    blackHole(authenticator.authenticate(token: token, allowed: nil, cache: cache, now: now))
}
measure("authenticate (miss: ES256 verify)", iterations: 5_000) {
    blackHole(authenticator.authenticate(token: token, allowed: nil, cache: VerifiedTokenCache(), now: now))
}
measure("AccessPolicy.decide") { blackHole(AccessPolicy.decide(route: route, identity: identity)) }
measure("identityHeaderFields") {
    blackHole(HeaderRules.identityHeaderFields(GatewayConfig.defaultIdentityHeaders, identity: identity))
}
// The context as the proxy builds it: the peer's address and its text computed once per connection.
let forwardContext = HeaderRules.ForwardContext(
    peer: IPAddress("127.0.0.1"), peerTrusted: false, scheme: "http", rawHost: "127.0.0.1:8080",
    upstreamHost: "127.0.0.1:3000", preserveHost: false, requestID: "0123456789abcdef0123456789abcdef",
    peerText: "127.0.0.1", dropAuthorization: true)
measure("upstreamRequestHeaders") { blackHole(rules.upstreamRequestHeaders(from: fields, context: forwardContext)) }
measure("CanonicalTarget.parse (clean path)") { blackHole(try? CanonicalTarget.parse("/api/orders/123?x=1")) }
let table = RouteTable(routes: [route])
measure("RouteTable.match") { blackHole(table.match(host: "127.0.0.1", path: "/api/orders", method: "GET")) }
