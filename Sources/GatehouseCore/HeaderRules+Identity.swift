/// Identity headers: what the upstream (or a forward-auth caller) is told about the authenticated user.
///
/// Encoding (one rule everywhere identity leaves Gatehouse): a header carries the claim's members joined with
/// `,` and nothing else. A member that could be read as something else by the receiver is refused, never
/// rewritten: a member containing `,` (a naive split would see two members, `users,admins` would grant
/// `admins`), `"` (a quoted-string parser would merge or split members), a control character (CR, LF, NUL,
/// DEL, ...), leading or trailing whitespace (a split-and-trim would turn ` admins` into `admins`), or an empty
/// member. Refused members are left out of the header (the other members are sent), a header with no member
/// left is not sent, and every refusal is reported so the caller can log it. Authorization never looks at
/// these strings: the policy decides on the original members.
extension HeaderRules {
    /// The identity headers of a route: the global map with the route's entries added or overriding by
    /// normalised name.
    public static func effectiveIdentityHeaders(global: [IdentityHeader], route: [IdentityHeader]) -> [IdentityHeader] {
        var result = global
        for header in route {
            let n = normalise(header.name)
            if let i = result.firstIndex(where: { normalise($0.name) == n }) {
                result[i] = header
            } else {
                result.append(header)
            }
        }
        return result
    }

    /// Identity header values: the safe members of each header's claim joined with `,`. `dropped` names each
    /// header that lost a member (once per refused member). An absent claim means no header (the client's copy
    /// was already stripped).
    public static func identityHeaderFields(
        _ headers: [IdentityHeader], identity: Identity
    ) -> (fields: [(String, String)], dropped: [String]) {
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count + 2)  // one allocation; the caller appends a few more
        var dropped: [String] = []
        for header in headers {
            // The mapped single values without building an array for each (`Identity.values(for:)`'s cases).
            let single: String?
            switch header.claim {
            case "user": single = identity.user
            case "email": single = identity.email
            case "preferred_username": single = identity.preferredUsername
            default:
                let values = identity.values(for: header.claim)
                guard !values.isEmpty else { continue }
                if values.count > 1 {
                    var joined = ""
                    for value in values {
                        guard isSafeIdentityMember(value) else {
                            dropped.append(header.name)
                            continue
                        }
                        if !joined.isEmpty { joined += "," }
                        joined += value
                    }
                    if !joined.isEmpty { fields.append((header.name, joined)) }
                    continue
                }
                single = values[0]
            }
            // The common case (user, email, a single group): no join, no copy.
            guard let single else { continue }
            if isSafeIdentityMember(single) {
                fields.append((header.name, single))
            } else {
                dropped.append(header.name)
            }
        }
        return (fields, dropped)
    }

    /// A member that reads the same to every receiver: non-empty, no `,`, no `"`, no control byte, no leading or
    /// trailing space or tab. Bytes of 0x80 and above (UTF-8) pass as they are.
    public static func isSafeIdentityMember(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { buf in
            guard let first = buf.first, let last = buf.last else { return false }
            if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return false }
            for b in buf {
                if b < 0x20 || b == 0x7F || b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") { return false }
            }
            return true
        }
    }
}
