import Yams

/// The YAML node tree of a configuration file, before any validation.
struct ComposedDocument {
    /// nil for an empty document.
    var root: Node?
    /// Mapping keys whose text was altered to get past Yams' duplicate-key check: position -> original name.
    /// `NodeReader` reads these keys under their original name and reports the duplicate itself.
    var renamedKeys: [TextPosition: String]
}

/// Composes YAML text into a `Yams.Node` tree, turning YAML errors into located problems.
///
/// Yams refuses a mapping with a duplicate key while composing, which would hide every other problem of the
/// file. So on that error the composer renames the first occurrence in the text (its first character becomes
/// a private-use scalar, which keeps every column in place) and composes again, remembering the original
/// name. The walker then sees both keys and reports the later one, with its path, among all other problems.
/// Should the key's text not be where Yams says, the duplicate is reported alone, at the position Yams gave.
enum DocumentComposer {
    /// Bound on recompositions for one file (each one removes one duplicate).
    static let maxRenames = 64

    static func compose(_ yaml: String, file: String) throws(ConfigError) -> ComposedDocument {
        var text = yaml
        var renamed: [TextPosition: String] = [:]
        while true {
            do {
                let root = try Yams.compose(yaml: text, .default, .default, .utf8)
                return ComposedDocument(root: root, renamedKeys: renamed)
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                let position = TextPosition(context.mark)
                let key = duplicates.first ?? ""
                if renamed.count < maxRenames, renamed[position] == nil,
                    let edited = renameKey(in: text, at: position, key: key, serial: renamed.count)
                {
                    text = edited
                    renamed[position] = key
                    continue
                }
                throw failure(file, position, "duplicate key '\(key)'")
            } catch let error as YamlError {
                throw failure(file, position(of: error, in: yaml), message(for: error))
            } catch {
                throw failure(file, .start, "invalid YAML: \(error)")
            }
        }
    }

    private static func failure(_ file: String, _ position: TextPosition, _ message: String) -> ConfigError {
        ConfigError(problems: [
            ConfigProblem(file: file, line: position.line, column: position.column, path: "", message: message)
        ])
    }

    /// Replaces the first character of the key that starts at `position` (inside its quotes, if quoted).
    private static func renameKey(in text: String, at position: TextPosition, key: String, serial: Int) -> String? {
        var scalars = Array(text.unicodeScalars)
        guard var offset = position.scalarOffset(in: scalars), let first = key.unicodeScalars.first else {
            return nil
        }
        if scalars[offset] == "\"" || scalars[offset] == "'" { offset += 1 }
        guard offset < scalars.count, scalars[offset] == first,
            let marker = Unicode.Scalar(0xE000 + UInt32(serial % 0x1000))
        else { return nil }
        scalars[offset] = marker
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    private static func position(of error: YamlError, in yaml: String) -> TextPosition {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return TextPosition(mark)
        case .reader(_, let offset, _, _):
            guard let offset else { return .start }
            // Yams reports the offset in Characters; count scalars up to that Character.
            let characters = yaml.prefix(offset)
            let scalars = Array(yaml.unicodeScalars)
            return TextPosition.of(scalarOffset: characters.unicodeScalars.count, in: scalars)
        default:
            return .start
        }
    }

    private static func message(for error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            guard let context else { return "invalid YAML: \(problem)" }
            return
                "invalid YAML: \(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        case .reader(let problem, _, _, _):
            return "invalid YAML: \(problem)"
        default:
            return "invalid YAML: \(error)"
        }
    }
}
