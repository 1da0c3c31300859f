// swift-tools-version:6.0
// The per-client abuse-control tables (RateTable, LockTable) timed at 1,000 and 1,000,000 tracked
// clients, and (policy-bench --maps) texthash: access maps at 100 and 100,000 entries: a package of its own
// so the product's `swift build` never sees it.  bench/run.sh builds it with
//   swift build -c release --package-path bench/policy
// (its own .build under bench/policy) and runs .build/release/policy-bench; see Sources/policy-bench/main.swift.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory, whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "SMTPGatePolicyBench",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "policy-bench",
            dependencies: [.product(name: "SMTPGateCore", package: root), "CMallocInfo"],
            // a script-like main.swift with top-level state, as the root package's executables use v5 too
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // bench/run.sh's instructions section: SwiftNIO's floor for one relayed connection
        .executableTarget(
            name: "bare-relay",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // mallinfo2 and malloc_trim for the access-map section's memory figures (not in Swift's Glibc module)
        .target(name: "CMallocInfo"),
    ]
)
