import Foundation
import GatehouseAuth
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real OIDC key server on loopback: `/.well-known/openid-configuration` and `/jwks`, with a swappable key
/// set, a JWKS request counter, and an on/off switch (off = 503).
final class KeyServer: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var jwks: String
        var jwksFetches = 0
        var discoveryFetches = 0
        var up = true
    }

    let scheme: String

    /// With `tls`, the server speaks HTTPS with that certificate chain and key (PEM files).
    init(jwks: String, tls: (certificate: String, key: String)? = nil) async throws {
        let state = NIOLockedValueBox(State(jwks: jwks))
        self.state = state
        var sslContext: NIOSSLContext?
        if let tls {
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
            sslContext = try NIOSSLContext(configuration: configuration)
        }
        scheme = tls == nil ? "http" : "https"
        let scheme = self.scheme
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline()
                    try ch.pipeline.syncOperations.addHandler(KeyServerHandler(state: state, scheme: scheme))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var issuer: String { "\(scheme)://127.0.0.1:\(channel.localAddress?.port ?? 0)" }
    var jwksFetches: Int { state.withLockedValue { $0.jwksFetches } }
    func setKeys(_ jwks: String) { state.withLockedValue { $0.jwks = jwks } }
    func setUp(_ up: Bool) { state.withLockedValue { $0.up = up } }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class KeyServerHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<State>
        let scheme: String
        init(state: NIOLockedValueBox<State>, scheme: String) {
            self.state = state
            self.scheme = scheme
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let port = context.channel.localAddress?.port ?? 0
            let (status, body): (HTTPResponseStatus, String) = state.withLockedValue { s in
                guard s.up else { return (.serviceUnavailable, "down") }
                switch head.uri {
                case "/.well-known/openid-configuration":
                    s.discoveryFetches += 1
                    return (.ok, #"{"issuer":"\#(scheme)://127.0.0.1:\#(port)","jwks_uri":"\#(scheme)://127.0.0.1:\#(port)/jwks"}"#)
                case "/jwks":
                    s.jwksFetches += 1
                    return (.ok, s.jwks)
                default:
                    return (.notFound, "")
                }
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Cache-Control", value: "max-age=300")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// Signs test tokens with `DevTokenSigner` (ES256, swift-crypto). Independent-library tokens come from
/// scripts/jwt/mint.py (joserfc) in the interop tests.
struct Minter {
    let signer: DevTokenSigner
    let issuer: String

    init(kid: String, issuer: String) {
        signer = DevTokenSigner(kid: kid)
        self.issuer = issuer
    }

    func token(sub: String = "alice", groups: [String] = ["staff"], aud: String = "api", ttl: Int = 600, extra: String = "") -> String {
        let now = Int(Date().timeIntervalSince1970)
        let g = groups.map { "\"\($0)\"" }.joined(separator: ",")
        let claims = #"{"iss":"\#(issuer)","aud":"\#(aud)","sub":"\#(sub)","email":"\#(sub)@example.com","groups":[\#(g)],"preferred_username":"\#(sub)","iat":\#(now),"exp":\#(now + ttl)\#(extra)}"#
        return (try? signer.sign(claimsJSON: claims)) ?? ""
    }

    /// A JWKS holding the public keys of several minters.
    static func jwks(_ minters: [Minter]) -> String {
        let keys = minters.map { m -> String in
            let doc = m.signer.jwks
            return String(doc.dropFirst(#"{"keys":["#.count).dropLast(2))
        }
        return #"{"keys":[\#(keys.joined(separator: ","))]}"#
    }
}
