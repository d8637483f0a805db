/// Names, chunking and reassembly of Gatehouse's own cookies (pure).
///
/// A sealed session that fits in one cookie is sent as `<name>=<sealed>`. A larger one is split: the first
/// cookie carries `<count>.<chunk 0>` and the others `<name>_1` … `<name>_<count-1>`. The count is one digit
/// (2…`maxChunks`), so a hostile count costs nothing; a missing chunk means no session. Login transactions are
/// `<name>_tx_<id>` cookies, one per login in progress (parallel tabs), at most `maxTransactions`.
public struct SessionCookieNames: Sendable, Equatable {
    public static let chunkBytes = 3800
    public static let maxChunks = 6
    public static let maxTransactions = 4

    public let base: String
    public init(base: String) { self.base = base }

    public func chunk(_ index: Int) -> String { "\(base)_\(index)" }
    public var transactionPrefix: String { "\(base)_tx_" }
    public var failureCounter: String { "\(base)_fails" }

    /// Whether a cookie name is one of Gatehouse's (removed before forwarding upstream): exactly the base,
    /// `<base>_1` … `<base>_<maxChunks>`, `<base>_fails` or `<base>_tx_<id>`; an app's `<base>_id` stays the app's.
    public func isOwn(_ name: Substring) -> Bool {
        let n = name.utf8
        let b = base.utf8
        guard n.count >= b.count, n.prefix(b.count).elementsEqual(b) else { return false }
        let rest = n.dropFirst(b.count)
        if rest.isEmpty || rest.elementsEqual("_fails".utf8) { return true }
        if rest.starts(with: "_tx_".utf8) { return rest.count > 4 }
        guard rest.count == 2, rest.first == UInt8(ascii: "_"), let digit = rest.last else { return false }
        return digit >= UInt8(ascii: "1") && digit <= UInt8(ascii: "0") + UInt8(Self.maxChunks)
    }

    /// Splits a sealed value into cookie (name, value) pairs; nil when it would need more than `maxChunks`.
    public func split(_ sealed: String) -> [(name: String, value: String)]? {
        let utf8 = Array(sealed.utf8)
        if utf8.count <= Self.chunkBytes { return [(base, sealed)] }
        let count = (utf8.count + Self.chunkBytes - 1) / Self.chunkBytes
        guard count <= Self.maxChunks else { return nil }
        var out: [(name: String, value: String)] = []
        for i in 0..<count {
            let slice = utf8[(i * Self.chunkBytes)..<min(utf8.count, (i + 1) * Self.chunkBytes)]
            let text = String(decoding: slice, as: UTF8.self)
            out.append(i == 0 ? (base, "\(count).\(text)") : (chunk(i), text))
        }
        return out
    }

    /// Reassembles the sealed value from the request's cookies; nil when absent or incomplete.
    public func join(_ cookies: [(name: String, value: String)]) -> String? {
        func single(_ name: String) -> String? {
            // Two cookies of one name (another Path or a sibling domain's Domain cookie): one was planted;
            // trust neither.
            var found: String?
            for c in cookies where c.name == name {
                if found != nil { return nil }
                found = c.value
            }
            return found
        }
        guard let first = single(base), !first.isEmpty else { return nil }
        let utf8 = first.utf8
        guard utf8.count >= 2, utf8[utf8.index(after: utf8.startIndex)] == UInt8(ascii: "."),
            let digit = utf8.first, digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9")
        else { return first }  // a single cookie: sealed values never have '.' as their second byte
        let count = Int(digit - UInt8(ascii: "0"))
        guard count >= 2, count <= Self.maxChunks else { return nil }
        var value = String(first.dropFirst(2))
        for i in 1..<count {
            guard let part = single(chunk(i)), !part.isEmpty else { return nil }
            value += part
        }
        return value
    }

    /// Names of chunk cookies the request carries beyond `keep` chunks (to be cleared as stale).
    public func staleChunks(in cookies: [(name: String, value: String)], keep: Int) -> [String] {
        (max(1, keep)...Self.maxChunks).map(chunk).filter { name in cookies.contains { $0.name == name } }
    }

    /// Every chunk cookie name present in the request (including the base).
    public func present(in cookies: [(name: String, value: String)]) -> [String] {
        ([base] + (1...Self.maxChunks).map(chunk)).filter { name in cookies.contains { $0.name == name } }
    }
}
