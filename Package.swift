// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        // Pure domain: request view, canonical path, routes, policy, header rules, errors. No NIO, no Yams.
        .target(name: "GatehouseCore"),
        // YAML text -> validated immutable snapshot.
        .target(
            name: "GatehouseConfig",
            dependencies: ["GatehouseCore", .product(name: "Yams", package: "Yams")]
        ),
        // Byte-level HTTP/1.1: request and response heads as ranges over their bytes, body framing, chunked
        // decoding, head writers. Pure (values and state machines over ByteBuffer), no channels.
        .target(
            name: "GatehouseHTTP",
            dependencies: ["GatehouseCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // Upstream connections: the pool and connection state machines (pure) and their shells (one pool per
        // upstream and event loop, the connection handler that writes requests and frames responses as bytes).
        .target(
            name: "GatehouseUpstream",
            dependencies: ["GatehouseCore", "GatehouseHTTP", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // JWT verification, key sets, verified-token cache. Network only through the KeySource protocol.
        .target(
            name: "GatehouseAuth",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Listeners, HTTP/1.1 pipeline runner, upstream pool, admin listener, services.
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseCore", "GatehouseAuth", "GatehouseHTTP", "GatehouseUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseServer", "GatehouseConfig", "GatehouseCore", "GatehouseAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Micro-benchmarks of the per-request pure pieces; never shipped.
        .executableTarget(
            name: "gatehouse-microbench",
            dependencies: [
                "GatehouseAuth", "GatehouseCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Fuzz targets: properties over arbitrary bytes (and the differential reading against NIO's llhttp),
        // replayed over the committed corpus by FuzzCorpusTests and run under libFuzzer by scripts/fuzz.
        .target(
            name: "GatehouseFuzz",
            dependencies: [
                "GatehouseCore", "GatehouseHTTP", "GatehouseAuth", "GatehouseConfig",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "GatehouseCoreTests", dependencies: ["GatehouseCore"]),
        .testTarget(
            name: "GatehouseFuzzTests",
            dependencies: ["GatehouseFuzz", "GatehouseAuth", "GatehouseCore"]
        ),
        .testTarget(
            name: "GatehouseHTTPTests",
            dependencies: [
                "GatehouseHTTP", "GatehouseCore", "GatehouseFuzz",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GatehouseUpstreamTests",
            dependencies: [
                "GatehouseUpstream", "GatehouseHTTP", "GatehouseCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GatehouseAuthTests",
            dependencies: [
                "GatehouseAuth", "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "GatehouseConfigTests", dependencies: ["GatehouseConfig", "GatehouseCore"]),
        .testTarget(
            name: "GatehouseServerTests",
            dependencies: [
                "GatehouseServer", "GatehouseConfig", "GatehouseCore", "GatehouseAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ]
)

// The libFuzzer driver exists only in fuzzing builds (scripts/fuzz sets GATEHOUSE_FUZZ=1 and -sanitize=fuzzer):
// without libFuzzer's runtime it cannot link, and ordinary builds and tests never need it.
if Context.environment["GATEHOUSE_FUZZ"] == "1" {
    package.targets += [
        .target(name: "CLibFuzzer"),
        .executableTarget(name: "gatehouse-fuzz", dependencies: ["CLibFuzzer", "GatehouseFuzz"]),
    ]
    package.products += [.executable(name: "gatehouse-fuzz", targets: ["gatehouse-fuzz"])]
}
