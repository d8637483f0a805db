import Yams

/// One YAML mapping of the configuration after its keys were checked: every entry here has a unique, known
/// key. Entries keep document order.
struct Fields {
    struct Entry {
        var key: String
        var keyNode: Node
        var value: Node
    }

    /// The mapping node itself (its position locates "required" problems).
    let mapping: Node
    /// The mapping's path in the document ("" for the root).
    let path: String
    let entries: [Entry]

    /// The value under `key`, including an explicit null; nil when the key is absent.
    func node(_ key: String) -> Node? {
        entries.first { $0.key == key }?.value
    }

    /// The value under `key`, or nil when the key is absent or null (null means "use the default").
    func value(_ key: String) -> Node? {
        guard let node = node(key), !node.isNull else { return nil }
        return node
    }

    /// The path of `key` in this mapping.
    func path(_ key: String) -> String {
        Fields.join(path, key)
    }

    static func join(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }
}
