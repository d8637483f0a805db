import GatehouseConfig
import GatehouseCore

/// The problem descriptions for `yaml` parsed as "test.yaml" ([] when it parses). `files` stands in for the
/// file system of secret files (path -> content); any other path is "no such file".
func problems(_ yaml: String, environment: [String: String] = [:], files: [String: String] = [:]) -> [String] {
    do {
        _ = try ConfigLoader.parse(
            yaml: yaml, file: "test.yaml", environment: environment, readFile: fakeFiles(files))
        return []
    } catch {
        return error.problems.map(\.description)
    }
}

/// A secret-file reader over `files` (path -> content).
func fakeFiles(_ files: [String: String]) -> (String) throws -> [UInt8] {
    { path in
        guard let content = files[path] else { throw ConfigLoader.FileReadError(reason: "no such file") }
        return Array(content.utf8)
    }
}

/// A one-route document with `server` (indented by the caller) inserted after the version line.
func document(server: String = "", route: String = "", top: String = "") -> String {
    """
    version: 1
    \(server)routes:
      - id: app
        upstream: http://127.0.0.1:3000
        auth: none
    \(route)\(top)
    """
}

/// A document whose providers are `providers` (YAML lines from line 3, each item starting "  - ") and whose
/// only route is `auth: jwt`.
func providerDocument(_ providers: String) -> String {
    "version: 1\nproviders:\n\(providers)routes:\n  - id: api\n    upstream: http://127.0.0.1:4000\n    auth: jwt\n"
}

/// A document with provider `corp` (lines 3 and 4; `provider` adds lines from line 5, indented by 4) and a
/// `jwt` route (`route` adds lines after its `auth: jwt` line: line 9 when `provider` is empty).
func jwtDocument(provider: String = "", route: String = "") -> String {
    """
    version: 1
    providers:
      - id: corp
        issuer: https://idp.example.com
    \(provider)routes:
      - id: api
        upstream: http://127.0.0.1:4000
        auth: jwt
    \(route)
    """
}
