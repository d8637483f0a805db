/// One thing wrong with a configuration file, located precisely enough for an editor to jump to it.
///
/// `line` and `column` are 1-based (as Yams/libyaml report them). `path` names the offending key in the
/// document, such as `routes[2].upstream` (0-based list indices) or `server.timeouts.idle`; it is empty when
/// the problem concerns the document as a whole (a YAML syntax error, an empty file).
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var path: String
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `FILE:LINE:COLUMN: PATH: MESSAGE`, or `FILE:LINE:COLUMN: MESSAGE` when `path` is empty.
    public var description: String {
        let location = "\(file):\(line):\(column)"
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }
}
