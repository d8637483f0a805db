import Foundation
import GatehouseCore

/// Turns `gatehouse.yaml` into a validated `GatewayConfig` (the contract is CONFIG.md, version 1).
///
/// Strict by design: unknown keys, wrong kinds, duplicate keys and contract keys that are not implemented yet
/// are all errors, and every problem of the file is reported at once, in document order, each with its
/// line, column and path.
public enum ConfigLoader {
    /// Larger files are refused before parsing; a real configuration is a few kilobytes.
    public static let maxFileBytes = 1 << 20

    /// Parses and validates. `environment` is used for `${VAR}` interpolation. Collects every problem before
    /// failing.
    public static func parse(
        yaml: String, file: String, environment: [String: String]
    ) throws(ConfigError) -> GatewayConfig {
        let document = try DocumentComposer.compose(yaml, file: file)
        var reader = NodeReader(file: file, environment: environment, renamedKeys: document.renamedKeys)
        let config = reader.readDocument(document.root)
        let problems = reader.problems
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return config
    }

    /// Reads the file, then `parse`. An unreadable, oversized or non-UTF-8 file is a `ConfigError` naming it.
    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> GatewayConfig {
        let text = try read(path)
        return try parse(yaml: text, file: path, environment: environment)
    }

    private static func read(_ path: String) throws(ConfigError) -> String {
        func failure(_ message: String) -> ConfigError {
            ConfigError(problems: [ConfigProblem(file: path, line: 1, column: 1, path: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("cannot read the configuration file: no such file")
        }
        guard !isDirectory.boolValue else { throw failure("cannot read the configuration file: it is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw failure("cannot read the configuration file: permission denied or not a regular file")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxFileBytes + 1) ?? Data()
        } catch {
            throw failure("cannot read the configuration file: \(error.localizedDescription)")
        }
        guard data.count <= maxFileBytes else {
            throw failure("the configuration file is larger than \(maxFileBytes / 1024) KiB")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure("the configuration file is not valid UTF-8")
        }
        return text
    }
}
