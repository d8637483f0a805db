import GatehouseConfig
import GatehouseCore

/// The config loader on arbitrary YAML text.
enum ConfigTarget {
    static let file = "fuzz.yaml"

    /// Properties: a document is loaded or refused with at least one problem; every problem names the file,
    /// a line and column inside the document (1-based) and says something; the same text gives the same
    /// answer twice (no hidden state).
    static func config(_ data: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let text = String(decoding: data, as: UTF8.self)
        let lines = yamlLines(text)
        let first = answer(text)
        try require(first == answer(text), "the same document loaded two ways")
        guard case .failure(let error) = first else { return }
        try require(!error.problems.isEmpty, "a refusal without a problem")
        for p in error.problems {
            try require(p.file == file, "a problem naming \(p.file)")
            try require(
                p.line >= 1 && p.line <= lines + 1 && p.column >= 1,
                "a problem at \(p.line):\(p.column) of \(lines) lines")
            try require(!p.message.isEmpty, "a problem without a message at \(p.line):\(p.column)")
        }
    }

    /// Lines as YAML counts them (YAML 1.1 §5.4, libyaml): LF, CRLF, a lone CR, NEL, LS and PS each end a line
    /// (found by this target: a document with lone CRs gets problems on lines past its last LF).
    static func yamlLines(_ text: String) -> Int {
        var lines = 1
        var previousCR = false
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: if !previousCR { lines += 1 }
            case 0x0D, 0x85, 0x2028, 0x2029: lines += 1
            default: break
            }
            previousCR = scalar.value == 0x0D
        }
        return lines
    }

    enum Answer: Equatable {
        case loaded(String)
        case failure(ConfigError)
        static func == (a: Answer, b: Answer) -> Bool {
            switch (a, b) {
            case (.loaded(let x), .loaded(let y)): return x == y
            case (.failure(let x), .failure(let y)): return x.problems == y.problems
            default: return false
            }
        }
    }

    static func answer(_ text: String) -> Answer {
        do {
            let config = try ConfigLoader.parse(
                yaml: text, file: file, environment: ["FUZZ_SECRET": String(repeating: "s", count: 40)],
                readFile: { _ in Array(repeating: 0x73, count: 40) })
            return .loaded("\(config.routes.count) routes, \(config.providers.count) providers")
        } catch {
            return .failure(error)
        }
    }
}
