/// A property a fuzz target checks was violated; `description` says which and on what.
public struct PropertyViolation: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(PropertyViolation) {
    if !condition { throw PropertyViolation(message()) }
}

/// The fuzz targets. Each takes arbitrary bytes and checks a property beyond "does not crash" (throwing
/// `PropertyViolation`); a crash or a violation is a find. The `gatehouse-fuzz` executable runs them under
/// libFuzzer (`scripts/fuzz`), and `FuzzCorpusTests` replays every committed seed and past find on every test run.
public enum FuzzTargets {
    public typealias Target = @Sendable (UnsafeRawBufferPointer) throws(PropertyViolation) -> Void

    public static let all: [(name: String, run: Target)] = [
        ("request-head", HTTPTargets.requestHead),
        ("response-head", HTTPTargets.responseHead),
        ("chunked", HTTPTargets.chunked),
        ("target", CoreTargets.target),
        ("validation", CoreTargets.validation),
        ("json", CoreTargets.json),
        ("jwt", AuthTargets.jwt),
        ("cookie", AuthTargets.cookie),
        ("config", ConfigTarget.config),
    ]

    public static func named(_ name: String) -> Target? {
        all.first { $0.name == name }?.run
    }
}

/// SplitMix64: a seeded generator, so mutation loops in tests make the same inputs on every run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
