import Foundation

/// Where tests find committed fixtures and the real files that setup downloads.
public enum TestPaths {
    /// The checkout's root (this file lives in Sources/TemperTestSupport/).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Committed golden fixtures shared by the test targets: Tests/Fixtures/.
    public static let fixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures")

    /// Real third-party files (models, tokenizers, test vectors) unpacked by Tools/setup-assets.sh
    /// into .deps/assets/; never committed.
    public static let assets = repositoryRoot.appendingPathComponent(".deps/assets")
}
