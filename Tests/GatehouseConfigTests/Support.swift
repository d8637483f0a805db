import GatehouseConfig
import GatehouseCore

/// The problem descriptions for `yaml` parsed as "test.yaml" ([] when it parses).
func problems(_ yaml: String, environment: [String: String] = [:]) -> [String] {
    do {
        _ = try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: environment)
        return []
    } catch {
        return error.problems.map(\.description)
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
