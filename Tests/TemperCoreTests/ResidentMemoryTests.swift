import Foundation
import Testing

@testable import TemperCore

/// The resident-set peak the SFT benchmark reports for both stacks.
@Suite(.serialized) struct ResidentMemoryTests {
    @Test func peakCoversPagesTouchedAfterTheReset() throws {
        try #require(ResidentMemory.resetPeak(), "this kernel cannot reset VmHWM")
        let before = ResidentMemory.peakBytes
        #expect(before > 0)
        let size = 96 << 20
        let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { block.deallocate() }
        // One byte per page is enough to make every page resident.
        for offset in stride(from: 0, to: size, by: 4096) { block.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self) }
        // Half the block: tests running beside this one may free memory meanwhile.
        #expect(ResidentMemory.peakBytes >= before + size / 2)
    }

    @Test func resetStartsTheNextPeakAtTheCurrentResidentSet() throws {
        let size = 64 << 20
        do {
            let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
            for offset in stride(from: 0, to: size, by: 4096) { block.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self) }
            block.deallocate()
        }
        ResidentMemory.returnFreedPages()
        let highWater = ResidentMemory.peakBytes
        try #require(ResidentMemory.resetPeak())
        #expect(ResidentMemory.peakBytes < highWater)
    }
}
