import Yams

/// A 1-based line and column in the YAML text. Columns count Unicode scalars, as libyaml does.
struct TextPosition: Hashable, Comparable, Sendable {
    var line: Int
    var column: Int

    static let start = TextPosition(line: 1, column: 1)

    init(line: Int, column: Int) {
        self.line = max(line, 1)
        self.column = max(column, 1)
    }

    init(_ mark: Mark?) {
        self.init(line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    static func < (a: TextPosition, b: TextPosition) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }

    /// The position of the scalar at `offset` in `scalars`, counting line breaks the way YAML does
    /// (LF, CR, CR LF, NEL, LS, PS).
    static func of(scalarOffset offset: Int, in scalars: [Unicode.Scalar]) -> TextPosition {
        var line = 1
        var column = 1
        var i = 0
        while i < offset, i < scalars.count {
            switch scalars[i] {
            case "\r":
                if i + 1 < offset, i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                line += 1
                column = 1
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
                column = 1
            default:
                column += 1
            }
            i += 1
        }
        return TextPosition(line: line, column: column)
    }

    /// The offset in `scalars` of this position, or nil when the text has no such position.
    func scalarOffset(in scalars: [Unicode.Scalar]) -> Int? {
        var line = 1
        var column = 1
        var i = 0
        while i < scalars.count {
            if line == self.line, column == self.column { return i }
            if line > self.line { return nil }
            switch scalars[i] {
            case "\r":
                if i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                line += 1
                column = 1
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
                column = 1
            default:
                column += 1
            }
            i += 1
        }
        return nil
    }
}
