import Yams

extension Node {
    /// True for an untagged plain null (`~`, `null`, `Null`, `NULL` or nothing at all, as in `key:`).
    /// An explicit `!!null` tag is null too. A quoted `"null"` or `!!str null` is a string, as YAML says.
    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        let tag = scalar.tag.description
        if tag == Tag.Name.null.rawValue { return true }
        guard tag == Tag.Name.implicit.rawValue, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// Where the node starts in the text.
    var position: TextPosition { TextPosition(mark) }
}
