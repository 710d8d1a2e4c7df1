// swift-tools-version: 6.1
import PackageDescription

// MLX comes from its pinned Python wheel, unpacked into .deps/ by `make deps` (Tools/setup-deps.sh).
// Paths are absolute so that plain `swift build`/`swift test` work with no environment variables and
// the binaries find libmlx.so through their rpath from any directory. OpenBLAS is linked before
// libmlx so that MLX's `cblas_sgemm` resolves to OpenBLAS instead of the wheel's reference BLAS.
let deps = Context.packageDirectory + "/.deps"
let mlxInclude = deps + "/mlx/include"
let mlxLib = deps + "/mlx/lib"
#if arch(arm64)
let openBLASDir = "/usr/lib/aarch64-linux-gnu/openblas-pthread"
#else
let openBLASDir = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
#endif

let mlxLinkerFlags: [String] = [
    "-L\(openBLASDir)", "-Xlinker", "--no-as-needed", "-lopenblas",
    "-L\(mlxLib)", "-lmlx", "-Xlinker", "--as-needed",
    "-Xlinker", "-rpath", "-Xlinker", openBLASDir,
    "-Xlinker", "-rpath", "-Xlinker", mlxLib,
]

let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Temper",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TemperCore", targets: ["TemperCore"]),
        .library(name: "TemperNN", targets: ["TemperNN"]),
        .library(name: "TemperTokenizers", targets: ["TemperTokenizers"]),
        .library(name: "TemperModels", targets: ["TemperModels"]),
        .library(name: "TemperPEFT", targets: ["TemperPEFT"]),
        .library(name: "TemperData", targets: ["TemperData"]),
        .library(name: "TemperTraining", targets: ["TemperTraining"]),
        .library(name: "TemperEngine", targets: ["TemperEngine"]),
        .executable(name: "temper", targets: ["temper"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Serving only (no ML target imports them). Hummingbird without its swift-configuration trait.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The gallery only: its registry (SQLite, or PostgreSQL shared by several workers) and content hashes.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // The only C++ with logic: MLX primitives for the CPU hot spots. -O3 always (a debug build of
        // the kernels would make every test and the demo slow); AVX2/FMA code is selected at run
        // time, with a portable fallback.
        .target(
            name: "CTemperKernels",
            cxxSettings: [
                .unsafeFlags([
                    "-I\(mlxInclude)", "-O3", "-fexceptions", "-fno-math-errno",
                    "-Wno-deprecated-declarations",
                ]),
            ]
        ),
        .target(
            name: "CMLXShim",
            dependencies: ["CTemperKernels"],
            cxxSettings: [
                .unsafeFlags(["-I\(mlxInclude)", "-O2", "-fexceptions"]),
            ],
            linkerSettings: [
                .unsafeFlags(mlxLinkerFlags),
                .linkedLibrary("stdc++"),
            ]
        ),
        .target(name: "TemperCore", dependencies: ["CMLXShim"], swiftSettings: swiftSettings),
        .target(name: "TemperNN", dependencies: ["TemperCore"], swiftSettings: swiftSettings),
        // Pure Swift (no MLX): byte-level BPE, GGUF metadata, Jinja chat templates.
        .target(name: "TemperTokenizers", swiftSettings: swiftSettings),
        .target(
            name: "TemperModels", dependencies: ["TemperNN", "TemperTokenizers"],
            swiftSettings: swiftSettings),
        // LoRA/QLoRA configuration, adapters on a model, merge, PEFT adapter files: used by
        // training, generation and serving alike, so inference links no trainer.
        .target(name: "TemperPEFT", dependencies: ["TemperModels", "TemperNN"], swiftSettings: swiftSettings),
        // Needs a tokenizer and a chat template, not a model.
        .target(name: "TemperData", dependencies: ["TemperCore", "TemperTokenizers"], swiftSettings: swiftSettings),
        .target(
            name: "TemperTraining",
            dependencies: [
                "TemperModels", "TemperPEFT", "TemperData", "TemperNN", "TemperEngine", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings),
        // The step-wise generation engine: continuous batching over a paged KV cache, per-request
        // sampling, stops, log-probs and adapters. Generation, serving and GRPO stand on it.
        .target(
            name: "TemperEngine", dependencies: ["TemperCore", "TemperNN", "TemperModels", "TemperPEFT", "TemperTokenizers"],
            swiftSettings: swiftSettings),
        // The OpenAI-compatible HTTP server over the engine (Hummingbird 2).
        .target(
            name: "TemperServe",
            dependencies: [
                "TemperEngine", "TemperModels", "TemperTokenizers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // The gallery service: registry with lineage (GRDB/SQLite), content-addressed artifacts, a job
        // queue whose jobs run as `temper <method> --recipe` processes, and its JSON API (Hummingbird 2).
        .target(
            name: "TemperGallery",
            dependencies: [
                "TemperCore", "TemperData", "TemperModels", "TemperTokenizers", "TemperTraining", "TemperServe", "TemperBench",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TemperBench", dependencies: ["TemperCore", "TemperModels", "TemperPEFT", "TemperData", "TemperTraining", "TemperEngine", "TemperServe"],
            swiftSettings: swiftSettings),
        .target(
            name: "TemperTestSupport", dependencies: ["TemperCore"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "temper",
            dependencies: [
                "TemperCore", "TemperNN", "TemperTokenizers", "TemperModels", "TemperPEFT", "TemperData", "TemperTraining",
                "TemperEngine", "TemperServe", "TemperBench", "TemperGallery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TemperCoreTests", dependencies: ["TemperCore", "TemperTestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperNNTests", dependencies: ["TemperNN", "TemperTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperTokenizersTests",
            dependencies: ["TemperTokenizers", "TemperTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperModelsTests", dependencies: ["TemperModels", "TemperTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperDataTests", dependencies: ["TemperData", "TemperTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperTrainingTests", dependencies: ["TemperTraining", "TemperPEFT", "TemperTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperEngineTests", dependencies: ["TemperEngine", "TemperTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperServeTests",
            dependencies: [
                "TemperServe", "TemperEngine", "TemperModels",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperGalleryTests",
            dependencies: [
                "TemperGallery", "TemperTestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TemperCLITests", dependencies: ["temper", "TemperTestSupport", "TemperCore"], swiftSettings: swiftSettings),
    ],
    cxxLanguageStandard: .gnucxx20
)
