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
    /// Larger secret files (`client_secret_file`, `shared_secret_file`) are refused; a secret is a few bytes.
    public static let maxSecretFileBytes = 64 << 10

    /// Why a file could not be read. `reason` never contains the file's content.
    public struct FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public init(reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// Parses and validates. `environment` is used for `${VAR}` interpolation. `readFile` reads the secret
    /// files named by `*_file` keys (a thrown error becomes a problem at that key; `FileReadError` gives the
    /// reason shown). Collects every problem before failing.
    public static func parse(
        yaml: String, file: String, environment: [String: String],
        readFile: (String) throws -> [UInt8] = ConfigLoader.readSecretFile
    ) throws(ConfigError) -> GatewayConfig {
        let document = try DocumentComposer.compose(yaml, file: file)
        let (config, problems) = withoutActuallyEscaping(readFile) { readFile in
            var reader = NodeReader(
                file: file, environment: environment, renamedKeys: document.renamedKeys, readFile: readFile)
            let config = reader.readDocument(document.root)
            return (config, reader.problems)
        }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return config
    }

    /// Reads the file, then `parse`. An unreadable, oversized or non-UTF-8 file is a `ConfigError` naming it.
    public static func load(
        path: String, environment: [String: String],
        readFile: (String) throws -> [UInt8] = ConfigLoader.readSecretFile
    ) throws(ConfigError) -> GatewayConfig {
        let text = try read(path)
        return try parse(yaml: text, file: path, environment: environment, readFile: readFile)
    }

    /// The default secret-file reader: the file's bytes, at most `maxSecretFileBytes`.
    public static func readSecretFile(_ path: String) throws(FileReadError) -> [UInt8] {
        do {
            return [UInt8](try readBytes(path, limit: maxSecretFileBytes))
        } catch .tooLarge {
            throw FileReadError(reason: "larger than \(maxSecretFileBytes / 1024) KiB")
        } catch {
            throw FileReadError(reason: error.reason)
        }
    }

    private static func read(_ path: String) throws(ConfigError) -> String {
        func failure(_ message: String) -> ConfigError {
            ConfigError(problems: [ConfigProblem(file: path, line: 1, column: 1, path: "", message: message)])
        }
        let data: Data
        do {
            data = try readBytes(path, limit: maxFileBytes)
        } catch .tooLarge {
            throw failure("the configuration file is larger than \(maxFileBytes / 1024) KiB")
        } catch {
            throw failure("cannot read the configuration file: \(error.reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure("the configuration file is not valid UTF-8")
        }
        return text
    }

    private enum ReadFailure: Error {
        case missing, directory, unopenable, tooLarge
        case failed(String)

        var reason: String {
            switch self {
            case .missing: return "no such file"
            case .directory: return "it is a directory"
            case .unopenable: return "permission denied or not a regular file"
            case .failed(let reason): return reason
            case .tooLarge: return "too large"
            }
        }
    }

    /// Reads at most `limit` bytes; a longer file is `.tooLarge`.
    private static func readBytes(_ path: String, limit: Int) throws(ReadFailure) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .missing }
        guard !isDirectory.boolValue else { throw .directory }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .unopenable }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw .failed(error.localizedDescription)
        }
        guard data.count <= limit else { throw .tooLarge }
        return data
    }
}
