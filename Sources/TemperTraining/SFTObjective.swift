import Foundation
import TemperCore
import TemperData
import TemperModels

/// A batch as tensors: next-token targets (labels shifted left, -100 where nothing is trained)
/// and, when rows hold several samples or padding, positions and segment ids.
public struct TokenBatch {
    public var ids: Tensor
    public var targets: Tensor
    public var layout: TokenLayout
    /// Tokens that carry loss.
    public var trainedTokenCount: Int
    /// All tokens, padding included.
    public var tokenCount: Int
    /// The whole data-parallel batch's row that this one's first row is.
    public var firstRow = 0

    public init(ids: Tensor, targets: Tensor, layout: TokenLayout, trainedTokenCount: Int, tokenCount: Int? = nil) {
        self.ids = ids
        self.targets = targets
        self.layout = layout
        self.trainedTokenCount = trainedTokenCount
        self.tokenCount = tokenCount ?? ids.size
    }

    public init(_ batch: Batch) {
        let rows = batch.rowCount, length = batch.length
        firstRow = batch.firstRow
        ids = Tensor(batch.ids.flatMap { $0 }, shape: [rows, length])
        let targets = batch.labels.flatMap { Array($0.dropFirst()) + [Int32(ignoredLabel)] }
        self.targets = Tensor(targets, shape: [rows * length])
        let simple = batch.segments.allSatisfy { $0.allSatisfy { $0 == 0 } }
        // One sample per row (maybe padded): positions are 0..<T wherever they matter.
        let unpacked = zip(batch.segments, batch.positions).allSatisfy { segments, positions in
            positions.indices.allSatisfy { segments[$0] < 0 || (segments[$0] == 0 && positions[$0] == Int32($0)) }
        }
        layout = TokenLayout(
            positions: Tensor(batch.positions.flatMap { $0 }, shape: [rows, length]),
            segments: simple ? nil : Tensor(batch.segments.flatMap { $0 }, shape: [rows, length]),
            sharedOffset: unpacked ? 0 : nil)
        trainedTokenCount = batch.trainedTokenCount
        tokenCount = batch.tokenCount
    }
}

/// Supervised fine-tuning's objective: mean cross-entropy over the step's trained tokens.
public struct SFTObjective: Objective {
    /// Which gradients the fused cross-entropy computes in its forward (`.hiddenAndWeight` when
    /// the LM head is trained).
    public var lossGradients: CrossEntropyGradients

    public init(trainsOutputWeight: Bool) {
        lossGradients = trainsOutputWeight ? .hiddenAndWeight : .hidden
    }

    public func firstGlobalRow(of batch: TokenBatch) -> Int { batch.firstRow }

    public func weight(of batch: TokenBatch) -> Int { batch.trainedTokenCount }

    public func loss(model: CausalLanguageModel, batch: TokenBatch, stepWeight: Int) -> ObjectiveOutput {
        ObjectiveOutput(loss: Self.lossSum(model, batch, gradients: lossGradients) / Double(stepWeight))
    }

    /// Σ −log p(target) over the batch's trained tokens, by the fused linear cross-entropy. In a
    /// training step (`gradients` not `.none`) its gradients come out of the forward.
    public static func lossSum(
        _ model: CausalLanguageModel, _ batch: TokenBatch, gradients: CrossEntropyGradients = .none
    ) -> Tensor {
        let hidden = model.hiddenStates(batch.ids, layout: batch.layout)
        return Kernels.linearCrossEntropy(
            hidden: hidden.reshaped(-1, hidden.dim(-1)), weight: model.outputWeight, targets: batch.targets,
            ignoreIndex: Int32(ignoredLabel), gradientsInForward: gradients).lossSum
    }
}
