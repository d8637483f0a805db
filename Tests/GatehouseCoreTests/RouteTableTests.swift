import Testing

@testable import GatehouseCore

@Suite struct RouteTableTests {
    static let up = UpstreamTarget(scheme: .http, host: "127.0.0.1", port: 3000)

    static func route(_ id: String, host: String? = nil, path: String, methods: Set<String>? = nil) -> RouteConfig {
        RouteConfig(
            id: id, host: host.flatMap(HostPattern.parse), pathPrefix: path, methods: methods, upstream: up, auth: .none)
    }

    let table = RouteTable(routes: [
        route("root", path: "/"),
        route("api", path: "/api"),
        route("api-v1", path: "/api/v1"),
        route("app-host", host: "app.example.com", path: "/"),
        route("wild", host: "*.example.org", path: "/api"),
        route("dup", path: "/api/v1"),
        route("ro", path: "/ro", methods: ["GET", "HEAD"]),
    ])

    func id(_ host: String?, _ path: String, _ method: String = "GET") -> String {
        switch table.match(host: host, path: path, method: method) {
        case .route(let i): return table.routes[i].id
        case .methodNotAllowed(let allowed): return "405:" + allowed.joined(separator: ",")
        case .notFound: return "404"
        }
    }

    @Test func segmentAwarePrefix() {
        #expect(id("x", "/api") == "api")
        #expect(id("x", "/api/") == "api")
        #expect(id("x", "/api/x") == "api")
        #expect(id("x", "/apix") == "root")
        #expect(id("x", "/api/v1") == "api-v1")
        #expect(id("x", "/api/v10") == "api")
        #expect(id("x", "/api/v1/users") == "api-v1")
    }

    @Test func longestPrefixWinsAndFirstBreaksTies() {
        #expect(id("x", "/api/v1/a") == "api-v1")  // "dup" has the same prefix but comes later
    }

    @Test func hostMatching() {
        #expect(id("app.example.com", "/anything") == "app-host")
        #expect(id("app.example.com", "/api/v1/x") == "app-host")  // the named host beats a longer hostless prefix
        #expect(id("other.example.com", "/anything") == "root")
        #expect(id("a.example.org", "/api/x") == "wild")
        #expect(id("a.b.example.org", "/api/x") == "wild")
        #expect(id("example.org", "/api/x") == "api")
        #expect(id("evilexample.org", "/api/x") == "api")
    }

    @Test func methods() {
        #expect(id("x", "/ro", "GET") == "ro")
        #expect(id("x", "/ro", "POST") == "405:GET,HEAD")  // never falls through to the less specific "/"
        let only = RouteTable(routes: [Self.route("ro", path: "/ro", methods: ["GET", "HEAD"])])
        #expect(only.match(host: "x", path: "/ro/a", method: "DELETE") == .methodNotAllowed(allowed: ["GET", "HEAD"]))
        #expect(only.match(host: "x", path: "/other", method: "GET") == .notFound)
    }

    @Test func hostPatterns() {
        #expect(HostPattern.parse("*.example.com") == .wildcard(suffix: ".example.com"))
        #expect(HostPattern.parse("App.Example.COM") == .exact("app.example.com"))
        #expect(HostPattern.parse("*.") == nil)
        #expect(HostPattern.parse("a*b.com") == nil)
        #expect(HostPattern.parse("exa mple.com") == nil)
    }

    @Test func hostNormalisation() {
        #expect(HostName.normalise("Example.COM:8080") == "example.com")
        #expect(HostName.normalise("example.com.") == "example.com")
        #expect(HostName.normalise("[::1]:8080") == "::1")
        #expect(HostName.normalise("a b") == nil)
        #expect(HostName.normalise("a@b") == nil)
        #expect(HostName.normalise("host:99999") == nil)
        #expect(HostName.normalise("") == nil)
    }
}
