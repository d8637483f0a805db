import Crypto
import Foundation
import GatehouseCore

/// Mints ES256 tokens with a local key: used only by `gatehouse dev` (so a protected route can be tried at once)
/// and by tests. Never used to verify anything.
public struct DevTokenSigner: Sendable {
    public let key: P256.Signing.PrivateKey
    public let kid: String

    public init(kid: String = "gatehouse-dev") {
        self.key = P256.Signing.PrivateKey()
        self.kid = kid
    }

    /// The public key as a JWKS document.
    public var jwks: String {
        let raw = Array(key.publicKey.rawRepresentation)
        let x = Base64URL.encode(raw[0..<32])
        let y = Base64URL.encode(raw[32..<64])
        return
            #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(x)","y":"\#(y)"}]}"#
    }

    /// Signs the given claims (a JSON object text) as a compact JWS.
    public func sign(claimsJSON: String) throws -> String {
        let header = #"{"alg":"ES256","typ":"JWT","kid":"\#(kid)"}"#
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claimsJSON.utf8))
        let signature = try key.signature(for: Array(input.utf8))
        return input + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }
}
