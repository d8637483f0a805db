/// A configuration that cannot be used. It carries every problem found, in document order, so an operator
/// can fix them all in one pass instead of one restart per mistake.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    /// One problem per line.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
