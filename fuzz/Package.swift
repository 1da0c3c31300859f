// swift-tools-version:6.0
// libFuzzer targets for SMTPGateCore, a package of their own so the product's `swift build` never sees them.
// fuzz/run.sh builds and runs them; its build is
//   swift build -c release --package-path fuzz -Xswiftc -sanitize=fuzzer,address
// which instruments SMTPGateCore too (coverage and ASan), not only the targets.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory, whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
let core = Target.Dependency.product(name: "SMTPGateCore", package: root)

/// One executable per concern, each in Sources/NAME/, its entry the file's top-level `fuzzMain { ... }`.
let fuzzers: [(name: String, crypto: Bool)] = [
    ("session-client", false), ("session-server", false), ("reply-reader", false), ("data-end", false),
    ("dot-unstuff", false), ("helper-packets", true), ("clamd-reply", false), ("spamd-reply", false),
    ("config-parser", false),
]

let package = Package(
    name: "SMTPGateFuzz",
    dependencies: [
        .package(path: ".."),
        // Already in the graph through SMTPGateCore; helper-packets signs v2 packets with it.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer", core]),
    ] + fuzzers.map { fuzzer in
        .executableTarget(
            name: fuzzer.name,
            dependencies: ["FuzzSupport", core]
                + (fuzzer.crypto ? [.product(name: "Crypto", package: "swift-crypto")] : []),
            // The system's gold fails on this toolchain's ASan runtime (an internal error); lld links it.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        )
    }
)
