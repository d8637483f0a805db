/// Environment-variable interpolation applied to every scalar value of the configuration before it is typed.
///
/// Syntax: `${NAME}` is the variable's value (an unset variable is an error; a set but empty one yields "");
/// `${NAME:-default}` yields `default` when NAME is unset or empty; `$$` is a literal `$`; any other `$` is
/// kept literally, so secrets such as `pa$word` need no escaping. NAME is `[A-Za-z_][A-Za-z0-9_]*`. The default
/// is literal text up to the first `}` and may not itself contain `${`. Substituted values are never scanned
/// again, so an environment value cannot inject further references.
enum Interpolation {
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// A `${` with no closing `}`.
        case unterminated
        /// `${...}` whose name is not a valid variable name; carries the whole reference.
        case invalidReference(String)
        /// A `${` inside a default value.
        case nestedReference(String)
        /// `${NAME}` without a default, NAME not in the environment.
        case unset(String)

        var description: String {
            switch self {
            case .unterminated:
                return "unterminated ${ (missing })"
            case .invalidReference(let reference):
                return "invalid environment variable reference \(reference) (use ${NAME} or ${NAME:-default})"
            case .nestedReference(let reference):
                return "nested ${ in the default of \(reference) is not supported"
            case .unset(let name):
                return "environment variable \(name) is not set"
            }
        }
    }

    static func expand(_ text: String, environment: [String: String]) throws(Failure) -> String {
        let scalars = text.unicodeScalars
        guard scalars.contains("$") else { return text }
        var out = String.UnicodeScalarView()
        var i = scalars.startIndex
        while i < scalars.endIndex {
            let c = scalars[i]
            let next = scalars.index(after: i)
            guard c == "$", next < scalars.endIndex, scalars[next] == "$" || scalars[next] == "{" else {
                out.append(c)
                i = next
                continue
            }
            if scalars[next] == "$" {
                out.append("$")
                i = scalars.index(after: next)
                continue
            }
            let bodyStart = scalars.index(after: next)
            guard let close = scalars[bodyStart...].firstIndex(of: "}") else { throw .unterminated }
            let body = String(scalars[bodyStart..<close])
            out.append(contentsOf: try substitute(body, environment: environment).unicodeScalars)
            i = scalars.index(after: close)
        }
        return String(out)
    }

    /// Resolves the inside of one `${...}`.
    private static func substitute(_ body: String, environment: [String: String]) throws(Failure) -> String {
        let reference = "${\(body)}"
        let name: Substring
        let fallback: Substring?
        if let separator = body.firstRange(of: ":-") {
            name = body[..<separator.lowerBound]
            fallback = body[separator.upperBound...]
        } else {
            name = Substring(body)
            fallback = nil
        }
        guard isVariableName(name) else { throw .invalidReference(reference) }
        if let fallback {
            guard !fallback.contains("${") else { throw .nestedReference(reference) }
            if let value = environment[String(name)], !value.isEmpty { return value }
            return String(fallback)
        }
        guard let value = environment[String(name)] else { throw .unset(String(name)) }
        return value
    }

    static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    private static func isLetter(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
    }
}
