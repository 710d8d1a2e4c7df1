import Testing

@testable import TemperCore

/// Tensors free their MLX buffer as soon as the last copy goes away (no garbage collection pass).
@Suite(.serialized) struct LifetimeTests {
    @Test func droppingTheLastCopyFreesTheBuffer() {
        Memory.clearCache()
        let before = Memory.activeBytes
        do {
            let big = Tensor.zeros([1 << 20]).evaluated()  // 4 MiB
            let copy = big
            #expect(Memory.activeBytes >= before + 4 << 20)
            _ = copy.size
        }
        #expect(Memory.activeBytes < before + 4 << 20)
    }

    @Test func tensorsMadeInsideAClosureAreFreedAfterIt() {
        Memory.clearCache()
        let before = Memory.activeBytes
        let total: Float = {
            let a = Tensor.ones([512, 512]).evaluated()
            let b = (a * 2).evaluated()
            return b.sum().item()
        }()
        #expect(total == 2 * 512 * 512)
        #expect(Memory.activeBytes < before + 512 * 512 * 4)
    }
}
