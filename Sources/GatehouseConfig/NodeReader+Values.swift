import GatehouseCore
import Yams

/// Typed scalar readers. Each interpolates first, then parses; a wrong node kind and a wrong text get the
/// same "expected ..." message, which says what would be accepted.
extension NodeReader {
    static let durationExpectation = "expected a duration such as 30s, 5m, 1h30m or 250ms"
    static let sizeExpectation = "expected a size such as 4096, 512KiB or 16MiB"

    /// A duration; zero is refused unless `allowZero` (a timeout of zero means nothing sensible).
    mutating func duration(_ node: Node, path: String, allowZero: Bool = false) -> GatehouseCore.Duration? {
        guard let text = string(node, path: path, expected: Self.durationExpectation) else { return nil }
        guard let duration = Units.duration(text) else {
            report(Self.durationExpectation, at: path, node: node)
            return nil
        }
        guard allowZero || duration.nanoseconds > 0 else {
            report("must be greater than 0", at: path, node: node)
            return nil
        }
        return duration
    }

    /// A byte size, optionally bounded; `bounds` is the text naming the range in the message.
    mutating func size(
        _ node: Node, path: String, range: ClosedRange<Int64>? = nil, bounds: String = ""
    ) -> Int64? {
        guard let text = string(node, path: path, expected: Self.sizeExpectation) else { return nil }
        guard let size = Units.size(text) else {
            report(Self.sizeExpectation, at: path, node: node)
            return nil
        }
        if let range, !range.contains(size) {
            report("must be between \(bounds)", at: path, node: node)
            return nil
        }
        return size
    }

    /// `true` or `false` only: YAML 1.1's yes/no/on/off are refused so that `on` never silently means true.
    mutating func bool(_ node: Node, path: String) -> Bool? {
        let expectation = "expected true or false"
        switch string(node, path: path, expected: expectation) {
        case "true": return true
        case "false": return false
        case nil: return nil
        default:
            report(expectation, at: path, node: node)
            return nil
        }
    }

    mutating func integer(_ node: Node, path: String, range: ClosedRange<Int>) -> Int? {
        let expectation = "expected an integer from \(range.lowerBound) to \(range.upperBound)"
        guard let text = string(node, path: path, expected: expectation) else { return nil }
        guard let value = Units.integer(text), range.contains(value) else {
            report(expectation, at: path, node: node)
            return nil
        }
        return value
    }

    mutating func listenAddress(_ node: Node, path: String) -> ListenAddress? {
        let expectation = "expected host:port (IPv6 as [::1]:8080)"
        guard let text = string(node, path: path, expected: expectation) else { return nil }
        guard let address = ListenAddress.parse(text) else {
            report(expectation, at: path, node: node)
            return nil
        }
        return address
    }

    /// One of the raw values of `T`, e.g. `json | logfmt | off`.
    mutating func choice<T: RawRepresentable>(
        _ node: Node, path: String, _ options: [T], expectation: String
    ) -> T? where T.RawValue == String {
        guard let text = string(node, path: path, expected: expectation) else { return nil }
        guard let value = options.first(where: { $0.rawValue == text }) else {
            report(expectation, at: path, node: node)
            return nil
        }
        return value
    }

    /// A string that is not empty. A null is refused too (where null means "default", callers check first).
    mutating func nonEmptyString(_ node: Node, path: String) -> String? {
        guard !node.isNull else {
            report("expected a string", at: path, node: node)
            return nil
        }
        guard let text = string(node, path: path) else { return nil }
        guard !text.isEmpty else {
            report("must not be empty", at: path, node: node)
            return nil
        }
        return text
    }

    /// A list of non-empty strings, each also passing `check` (which returns the problem, or nil). Returns nil
    /// when anything was reported.
    mutating func strings(_ node: Node, path: String, check: (String) -> String? = { _ in nil }) -> [String]? {
        guard let items = list(node, path: path) else { return nil }
        var values: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = nonEmptyString(item, path: itemPath) else { continue }
            if let problem = check(text) {
                report(problem, at: itemPath, node: item)
                continue
            }
            values.append(text)
        }
        return values.count == items.count ? values : nil
    }

    /// A scalar value kept as written (`true`, `42` and `acme` all stay text); null and collections are refused.
    mutating func scalarText(_ node: Node, path: String, expected: String) -> String? {
        guard !node.isNull else {
            report(expected, at: path, node: node)
            return nil
        }
        return string(node, path: path, expected: expected)
    }

    /// The bytes of the file whose path is the string at `node`. An unreadable file is a problem at `path`
    /// that gives the reason only: the content of a secret file never appears in a message.
    mutating func secretFile(_ node: Node, path: String) -> [UInt8]? {
        guard let filePath = nonEmptyString(node, path: path) else { return nil }
        do {
            return try readFile(filePath)
        } catch {
            let reason = (error as? ConfigLoader.FileReadError)?.reason ?? String(describing: error)
            report("cannot read file: \(reason)", at: path, node: node)
            return nil
        }
    }
}
