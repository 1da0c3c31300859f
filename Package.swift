// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SMTPGate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "smtpgate", targets: ["smtpgate"]),
        .executable(name: "smtpgate-helper", targets: ["smtpgate-helper"]),
        .library(name: "SMTPGateCore", targets: ["SMTPGateCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "SMTPGateCore",
            dependencies: ["CPCRE2", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
        ),
        .target(
            name: "SMTPGateRuntime",
            dependencies: [
                "SMTPGateCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .systemLibrary(
            name: "CConntrack",
            pkgConfig: "libnetfilter_conntrack",
            providers: [.apt(["libnetfilter-conntrack-dev", "libmnl-dev"])]
        ),
        .systemLibrary(
            name: "CUnbound",
            providers: [.apt(["libunbound-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "SMTPGateProxy",
            dependencies: [
                "SMTPGateCore",
                "SMTPGateRuntime",
                "CSQLite",
                "CUnbound",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .target(
            name: "SMTPGateHelper",
            dependencies: [
                "SMTPGateCore",
                "SMTPGateRuntime",
                "CConntrack",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "smtpgate",
            dependencies: [
                "SMTPGateProxy",
                "SMTPGateRuntime",
                "SMTPGateCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "smtpgate-helper",
            dependencies: [
                "SMTPGateHelper",
                "SMTPGateRuntime",
                "SMTPGateCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(name: "SMTPGateCoreTests", dependencies: ["SMTPGateCore"]),
        .testTarget(name: "SMTPGateHelperTests", dependencies: ["SMTPGateHelper", "SMTPGateCore", "SMTPGateRuntime"]),
        .testTarget(name: "SMTPGateRuntimeTests", dependencies: ["SMTPGateRuntime", "SMTPGateCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]),
        .testTarget(name: "SMTPGateProxyTests", dependencies: ["SMTPGateProxy", "SMTPGateCore", "CSQLite", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
