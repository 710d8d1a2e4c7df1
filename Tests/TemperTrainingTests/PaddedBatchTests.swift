import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperTestSupport
import Testing
@testable import TemperTraining

/// Rows of one batch padded to the longest: a shorter (padded) first row must not change the
/// others. Rows that each hold one sample share one RoPE table; it was taken from row 0's
/// positions, which are 0 on its padding, so a longer row's tail was rotated by angle 0.
@Suite struct PaddedBatchTests {
    @Test func aPaddedFirstRowLeavesTheOthersUnchanged() throws {
        let folder = try TinyModel.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let lm = try LanguageModel.load(directory: folder)
        let encoder = PreferenceEncoder(tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxLength: 160)
        let (examples, _) = try PreferenceReader.read(TestPaths.repositoryRoot.appendingPathComponent("Data/dpo-demo.jsonl"))
        let pairs = try examples.prefix(2).map { try encoder.encode($0).get() }
        let loader = try PreferenceLoader(pairs: pairs, batchSize: 2, maxLength: 160, shuffle: false, padTokenID: 2)
        let full = loader.makeBatch([0, 1])
        // Row 2 (pair 0 rejected) is shorter than row 3 (pair 1 rejected): keep those two, in that order.
        var two = full
        for keyPath in [\Batch.ids, \Batch.labels, \Batch.positions, \Batch.segments] { two[keyPath: keyPath] = [full[keyPath: keyPath][2], full[keyPath: keyPath][3]] }
        two.sampleIndices = [[0], [1]]
        #expect(two.segments[0].contains(-1) && !two.segments[1].contains(-1))
        var alone = two
        for keyPath in [\Batch.ids, \Batch.labels, \Batch.positions, \Batch.segments] { alone[keyPath: keyPath] = [two[keyPath: keyPath][1]] }
        func rowLogProbs(_ batch: Batch) -> [Float] {
            let tokens = TokenBatch(batch)
            let hidden = lm.network.hiddenStates(tokens.ids, layout: tokens.layout)
            return Kernels.linearCrossEntropy(
                hidden: hidden.reshaped(-1, hidden.dim(-1)), weight: lm.network.outputWeight, targets: tokens.targets
            ).logProbabilities.reshaped(batch.rowCount, -1).sum(axis: 1).toArray(Float.self)
        }
        let batched = rowLogProbs(two)[1], single = rowLogProbs(alone)[0]
        #expect(Swift.abs(batched - single) <= 1e-5 * Swift.abs(single), "\(batched) vs \(single)")
        let composition = Kernels.$useFusedKernels.withValue(false) { rowLogProbs(two)[1] }
        #expect(Swift.abs(batched - composition) <= 1e-5 * Swift.abs(single), "\(batched) vs MLX's \(composition)")
    }
}
