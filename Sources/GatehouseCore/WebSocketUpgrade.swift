/// WebSocket opening handshakes (RFC 6455 §4.1) as Gatehouse sees them: it does not speak the protocol, it
/// authenticates the upgrade request, lets the upstream answer it, and then pipes bytes.
public enum WebSocketUpgrade {
    /// Whether the request asks to switch protocols at all (`Connection: upgrade` plus an `Upgrade` header):
    /// after such a request the HTTP/1.1 connection cannot carry another request.
    public static func asksToUpgrade(_ headers: HeaderFields) -> Bool {
        var connectionUpgrade = false
        var upgrade = false
        for (name, value) in headers {
            switch name.lowercased() {
            case "connection":
                if value.split(separator: ",").contains(where: { $0.trimmingSpaces().lowercased() == "upgrade" }) {
                    connectionUpgrade = true
                }
            case "upgrade": upgrade = true
            default: break
            }
        }
        return connectionUpgrade && upgrade
    }

    /// The problem with a WebSocket upgrade request, or nil when it is one Gatehouse will pass on: GET over
    /// HTTP/1.1, `Upgrade: websocket` (only), `Sec-WebSocket-Version: 13` and a 16-byte base64 key.
    public static func problem(method: String, versionMinor: Int, headers: HeaderFields) -> String? {
        guard method == "GET", versionMinor == 1 else { return "a WebSocket upgrade must be GET over HTTP/1.1" }
        var upgrades: [String] = []
        var version: String?
        var key: String?
        for (name, value) in headers {
            switch name.lowercased() {
            case "upgrade": upgrades.append(value.trimmingSpaces().lowercased())
            case "sec-websocket-version": version = value.trimmingSpaces().description
            case "sec-websocket-key":
                if key != nil { return "more than one Sec-WebSocket-Key" }
                key = value.trimmingSpaces().description
            default: break
            }
        }
        guard upgrades == ["websocket"] else { return "only Upgrade: websocket is supported" }
        guard version == "13" else { return "Sec-WebSocket-Version must be 13" }
        guard let key, key.utf8.count == 24, key.hasSuffix("=="),
            Base64URL.decode(
                String(key.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }).dropLast(2).utf8)?.count == 16
        else { return "invalid Sec-WebSocket-Key" }
        return nil
    }
}
