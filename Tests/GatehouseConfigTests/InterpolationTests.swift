import Testing

@testable import GatehouseConfig

@Suite struct InterpolationTests {
    static let environment = ["A": "x", "B": "y", "EMPTY": "", "REF": "${B}", "URL": "http://10.0.0.1:80"]

    @Test(arguments: [
        ("plain", "plain"),
        ("${A}", "x"),
        ("a-${A}-b", "a-x-b"),
        ("${A}${B}", "xy"),
        ("${URL}/base", "http://10.0.0.1:80/base"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "x"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a:-b}", "a:-b"),
        ("${UNSET:-http://h:1/}", "http://h:1/"),
        ("${EMPTY}", ""),
        ("$$", "$"),
        ("$${A}", "${A}"),
        ("$$$${A}", "$${A}"),
        ("pa$word", "pa$word"),
        ("cost$", "cost$"),
        ("$", "$"),
        ("${REF}", "${B}"),
        ("_${_x1:-d}_", "_d_"),
        ("日本${A}語", "日本x語"),
    ])
    func expands(text: String, expected: String) throws {
        #expect(try Interpolation.expand(text, environment: Self.environment) == expected)
    }

    @Test(arguments: [
        ("${A", Interpolation.Failure.unterminated),
        ("x${", .unterminated),
        ("${A:-default", .unterminated),
        ("${}", .invalidReference("${}")),
        ("${1A}", .invalidReference("${1A}")),
        ("${A B}", .invalidReference("${A B}")),
        ("${A-default}", .invalidReference("${A-default}")),
        ("${A:default}", .invalidReference("${A:default}")),
        ("${A.B}", .invalidReference("${A.B}")),
        ("${UNSET}", .unset("UNSET")),
        ("ok ${A} then ${MISSING}", .unset("MISSING")),
        ("${UNSET:-${B}}", .nestedReference("${UNSET:-${B}")),
    ])
    func fails(text: String, failure: Interpolation.Failure) {
        #expect(throws: failure) {
            try Interpolation.expand(text, environment: Self.environment)
        }
    }

    @Test func failureMessages() {
        #expect(Interpolation.Failure.unset("UPSTREAM").description == "environment variable UPSTREAM is not set")
        #expect(Interpolation.Failure.unterminated.description == "unterminated ${ (missing })")
        #expect(
            Interpolation.Failure.invalidReference("${1A}").description
                == "invalid environment variable reference ${1A} (use ${NAME} or ${NAME:-default})")
    }
}
