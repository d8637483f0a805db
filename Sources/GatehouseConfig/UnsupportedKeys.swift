/// Keys that CONFIG.md (the version 1 contract) defines but this build does not implement yet.
///
/// They are refused rather than ignored: silently ignoring `session:` or `tls:` would run a gateway that is
/// less strict than its operator believes. Enabling a feature means deleting its line here and reading the
/// key in the matching `NodeReader+Section.swift`.
enum UnsupportedKeys {
    /// A mapping in the document where keys are looked up.
    enum Section: Hashable {
        case document, server, route
    }

    static let all: [Section: [String: String]] = [
        .document: [:],
        .server: [:],
        .route: [:],
    ]

    /// The problem message for `key` in `section`, or nil when the key is not a known-but-unsupported one.
    static func message(for key: String, in section: Section?) -> String? {
        guard let section else { return nil }
        return all[section]?[key]
    }
}
