import Crypto
import Foundation
import GatehouseCore

/// Seals and opens Gatehouse's cookies with AES-256-GCM (authenticated encryption: a changed bit fails to open).
///
/// Each configured secret yields a key by HKDF-SHA256 (salt "gatehouse-cookie-v1"); the first key seals, every
/// key opens, so secrets rotate by putting the new one first. The sealed form is base64url of
/// `version(1) || key id(4) || nonce(12) || ciphertext || tag(16)`. The key id (the first 4 bytes of SHA-256 of
/// the derived key) picks the key without trial decryption. The purpose ("session", "login") is authenticated
/// data, so a login-transaction cookie can never be opened as a session and vice versa.
public struct CookieSealer: Sendable {
    public enum Purpose: String, Sendable { case session, login }

    static let version: UInt8 = 1
    let keys: [(id: [UInt8], key: SymmetricKey)]
    public static let minimumSecretBytes = 32

    public init(secrets: [[UInt8]]) {
        keys = secrets.map { secret in
            let key = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: secret), salt: Array("gatehouse-cookie-v1".utf8),
                info: Array("aes-256-gcm".utf8), outputByteCount: 32)
            let id = key.withUnsafeBytes { Array(SHA256.hash(data: $0).prefix(4)) }
            return (id, key)
        }
    }

    public func seal(_ plaintext: [UInt8], purpose: Purpose) -> String? {
        guard let (id, key) = keys.first else { return nil }
        guard let box = try? AES.GCM.seal(plaintext, using: key, authenticating: Array(purpose.rawValue.utf8))
        else { return nil }
        var out: [UInt8] = [Self.version]
        out += id
        out += Array(box.nonce)
        out += Array(box.ciphertext)
        out += Array(box.tag)
        return Base64URL.encode(out)
    }

    /// The plaintext, or nil for anything tampered, truncated, sealed under an unknown key or for another purpose.
    public func open(_ sealed: String, purpose: Purpose) -> [UInt8]? {
        guard sealed.utf8.count <= SessionCookieNames.chunkBytes * SessionCookieNames.maxChunks,
            let bytes = Base64URL.decode(sealed.utf8), bytes.count >= 1 + 4 + 12 + 16, bytes[0] == Self.version
        else { return nil }
        let id = Array(bytes[1..<5])
        guard let key = keys.first(where: { $0.id == id })?.key,
            let nonce = try? AES.GCM.Nonce(data: bytes[5..<17]),
            let box = try? AES.GCM.SealedBox(
                nonce: nonce, ciphertext: bytes[17..<(bytes.count - 16)], tag: bytes[(bytes.count - 16)...]),
            let plain = try? AES.GCM.open(box, using: key, authenticating: Array(purpose.rawValue.utf8))
        else { return nil }
        return Array(plain)
    }
}

/// Random values for the login: state, nonce, PKCE verifier, session ids (256 bits each, base64url).
public enum LoginRandom {
    public static func token(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// RFC 7636 S256: base64url(SHA-256(verifier)).
    public static func codeChallenge(for verifier: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
    }

    /// Short, non-secret id of a transaction cookie derived from its state.
    public static func transactionID(for state: String) -> String {
        String(Base64URL.encode(Array(SHA256.hash(data: Array(state.utf8)).prefix(9))))
    }

    /// Constant-time comparison of two strings.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
