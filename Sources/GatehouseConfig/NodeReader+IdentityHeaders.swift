import GatehouseCore
import Yams

/// `identity_headers:` — header name -> identity field. The mapping replaces the defaults entirely, so `{}`
/// injects nothing; the order of the file is kept.
extension NodeReader {
    static let claimExpectation =
        "expected an identity field: user, email, groups, preferred_username or a claim name or dotted path (letters, digits, _, :, - and .) or a URL claim name"

    mutating func readIdentityHeaders(_ node: Node, path: String) -> [IdentityHeader] {
        guard let entries = readEntries(node, path: path) else { return [] }
        var headers: [IdentityHeader] = []
        var seen: [String: String] = [:]
        for entry in entries {
            let entryPath = Fields.join(path, entry.key)
            let lower = Syntax.normalisedHeaderName(entry.key)
            guard Syntax.isToken(entry.key) else {
                report("not a valid HTTP header name", at: entryPath, node: entry.keyNode)
                continue
            }
            guard !Syntax.isReservedHeader(entry.key) else {
                report("reserved header, cannot carry identity", at: entryPath, node: entry.keyNode)
                continue
            }
            if let other = seen[lower] {
                report(
                    "same header as \(other) (names are compared case-insensitively, with _ and . read as -)",
                    at: entryPath, node: entry.keyNode)
                continue
            }
            seen[lower] = entry.key
            guard let claim = string(entry.value, path: entryPath, expected: Self.claimExpectation) else { continue }
            guard Syntax.isClaimName(claim) else {
                report(Self.claimExpectation, at: entryPath, node: entry.value)
                continue
            }
            headers.append(IdentityHeader(name: entry.key, claim: claim))
        }
        return headers
    }
}
