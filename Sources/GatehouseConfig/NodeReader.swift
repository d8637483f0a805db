import Yams

/// Walks a composed YAML tree by hand and collects every problem, each located at the node it concerns.
///
/// A reader method that cannot produce a value reports why and returns nil, and the walk goes on: one run
/// lists everything wrong with the file. The typed configuration is only handed out when no problem was
/// found (see `ConfigLoader`). Section readers live in `NodeReader+Section.swift`.
struct NodeReader {
    let file: String
    let environment: [String: String]
    /// Keys renamed by `DocumentComposer` to get past Yams' duplicate check: position -> original name.
    let renamedKeys: [TextPosition: String]
    /// Reads the secret files named by `*_file` keys (injected so that tests need no files).
    let readFile: (String) throws -> [UInt8]
    private var collected: [ConfigProblem] = []

    init(
        file: String, environment: [String: String], renamedKeys: [TextPosition: String] = [:],
        readFile: @escaping (String) throws -> [UInt8]
    ) {
        self.file = file
        self.environment = environment
        self.renamedKeys = renamedKeys
        self.readFile = readFile
    }

    /// The problems in document order; problems at the same position keep the order they were found in.
    var problems: [ConfigProblem] {
        collected.enumerated()
            .sorted { a, b in
                (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
            }
            .map(\.element)
    }

    mutating func report(_ message: String, at path: String, _ position: TextPosition) {
        collected.append(
            ConfigProblem(file: file, line: position.line, column: position.column, path: path, message: message))
    }

    mutating func report(_ message: String, at path: String, node: Node) {
        report(message, at: path, node.position)
    }

    // MARK: Node kinds

    /// The entries of a mapping with string keys, duplicates reported (on the later occurrence) and dropped.
    mutating func readEntries(_ node: Node, path: String) -> [Fields.Entry]? {
        guard case .mapping(let mapping) = node else {
            report("expected a mapping", at: path, node: node)
            return nil
        }
        var seen: [String: TextPosition] = [:]
        var entries: [Fields.Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                report("expected a string key", at: path, node: keyNode)
                continue
            }
            let key = renamedKeys[keyNode.position] ?? scalar.string
            if let first = seen[key] {
                report("duplicate key (first defined at line \(first.line))", at: Fields.join(path, key), node: keyNode)
                continue
            }
            seen[key] = keyNode.position
            entries.append(Fields.Entry(key: key, keyNode: keyNode, value: value))
        }
        return entries
    }

    /// A mapping whose keys must be in `known`. Keys of the contract that are not implemented yet (listed in
    /// `UnsupportedKeys` for `section`) get their own message; any other key is an "unknown key".
    mutating func readMapping(
        _ node: Node, path: String, section: UnsupportedKeys.Section? = nil, known: Set<String>
    ) -> Fields? {
        guard let entries = readEntries(node, path: path) else { return nil }
        var accepted: [Fields.Entry] = []
        for entry in entries {
            let entryPath = Fields.join(path, entry.key)
            if let message = UnsupportedKeys.message(for: entry.key, in: section) {
                report(message, at: entryPath, node: entry.keyNode)
            } else if !known.contains(entry.key) {
                report("unknown key", at: entryPath, node: entry.keyNode)
            } else {
                accepted.append(entry)
            }
        }
        return Fields(mapping: node, path: path, entries: accepted)
    }

    mutating func list(_ node: Node, path: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            report("expected a list", at: path, node: node)
            return nil
        }
        return Array(sequence)
    }

    /// A scalar's text after `${VAR}` interpolation. `expected` is the message when the node is not a scalar.
    mutating func string(_ node: Node, path: String, expected: String = "expected a string") -> String? {
        guard case .scalar(let scalar) = node else {
            report(expected, at: path, node: node)
            return nil
        }
        do {
            return try Interpolation.expand(scalar.string, environment: environment)
        } catch {
            report(error.description, at: path, node: node)
            return nil
        }
    }

    /// A value that must be present and not null; reports "required" at the key (or the mapping) otherwise.
    mutating func required(_ fields: Fields, _ key: String) -> Node? {
        guard let node = fields.node(key) else {
            report("required", at: fields.path(key), node: fields.mapping)
            return nil
        }
        guard !node.isNull else {
            report("required", at: fields.path(key), node: node)
            return nil
        }
        return node
    }
}
