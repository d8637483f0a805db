import Foundation

/// Runs the repository's Python test tools (scripts/jwt/mint.py with joserfc, scripts/oidc/canaille_provider.py)
/// with the interpreter of the test virtual environment that ./scripts/test.sh creates. A missing environment
/// is a test failure with instructions, never a silent skip.
enum PythonTools {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var python: String? {
        if let env = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_PYTHON"], !env.isEmpty { return env }
        let venv = repoRoot.appendingPathComponent(".venv-test/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func requirePython() throws -> String {
        guard let python else {
            throw Failure(
                description:
                    "the Python test environment is missing: run ./scripts/test.sh (it creates .venv-test with scripts/requirements-test.txt), or set GATEHOUSE_TEST_PYTHON"
            )
        }
        return python
    }

    /// Runs a script to completion (bounded by `timeout`) and returns its standard output.
    static func run(_ script: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try requirePython())
        process.arguments = [repoRoot.appendingPathComponent(script).path] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning && Date() < deadline { process.waitUntilExit() }
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(script) \(arguments.first ?? "") failed: \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: outData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Mints a token with joserfc.
    static func mint(keys: String, kid: String, alg: String? = nil, claims: String, header: String? = nil) throws -> String {
        var args = ["sign", "--keys", keys, "--kid", kid, "--claims", claims]
        if let alg { args += ["--alg", alg] }
        if let header { args += ["--header", header] }
        return try run("scripts/jwt/mint.py", args)
    }
}

/// A long-running Python tool started with `serve`: its first stdout line is a JSON document describing it;
/// it stops when its stdin closes.
final class PythonService {
    let process = Process()
    let stdin = Pipe()
    let json: [String: Any]
    private let out: Pipe

    init(_ script: String, arguments: [String], startupTimeout: TimeInterval = 90) throws {
        process.executableURL = URL(fileURLWithPath: try PythonTools.requirePython())
        process.arguments = [PythonTools.repoRoot.appendingPathComponent(script).path] + arguments
        let out = Pipe()
        self.out = out
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        // Read the first line on a background thread, bounded by the timeout.
        let lineBox = LineBox()
        let reader = Thread {
            var data = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
                if data.contains(0x0A) { break }
            }
            lineBox.set(data)
        }
        reader.start()
        guard let line = lineBox.wait(timeout: startupTimeout),
            let newline = line.firstIndex(of: 0x0A),
            let obj = try? JSONSerialization.jsonObject(with: line[..<newline]) as? [String: Any]
        else {
            process.terminate()
            let errText = String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
            throw PythonTools.Failure(description: "\(script) did not start: \(errText.suffix(2000))")
        }
        json = obj
    }

    /// Sends one JSON command line on stdin and returns the one JSON line it answers (bounded by `timeout`).
    func command(_ object: [String: Any], timeout: TimeInterval = 60) throws -> [String: Any] {
        let line = try JSONSerialization.data(withJSONObject: object) + Data([0x0A])
        stdin.fileHandleForWriting.write(line)
        let box = LineBox()
        let handle = out.fileHandleForReading
        let reader = Thread {
            var data = Data()
            while true {
                // One byte at a time: nothing past the answer's newline is consumed.
                guard let byte = try? handle.read(upToCount: 1), !byte.isEmpty else { break }
                if byte[byte.startIndex] == 0x0A { break }
                data.append(byte)
            }
            box.set(data)
        }
        reader.start()
        guard let answer = box.wait(timeout: timeout),
            let obj = try? JSONSerialization.jsonObject(with: answer) as? [String: Any]
        else { throw PythonTools.Failure(description: "no answer to \(object["cmd"] ?? "?") within \(timeout) s") }
        return obj
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    final class LineBox: @unchecked Sendable {
        // Guarded by `condition`: set once by the reader thread, read by the waiting test.
        private let condition = NSCondition()
        private var value: Data?
        func set(_ data: Data) {
            condition.lock()
            value = data
            condition.signal()
            condition.unlock()
        }
        func wait(timeout: TimeInterval) -> Data? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(timeout)
            while value == nil && condition.wait(until: deadline) {}
            return value
        }
    }
}
