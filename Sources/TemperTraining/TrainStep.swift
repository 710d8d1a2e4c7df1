import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT

/// What an objective computes for one micro-batch.
public struct ObjectiveOutput {
    /// This micro-batch's share of the step loss: the step loss is the sum over the step's
    /// micro-batches, so each objective divides by the step's total ``Objective/weight(of:)``.
    public var loss: Tensor
    /// Scalar metrics, each already this micro-batch's share of the step's value (summed over
    /// micro-batches like the loss). Named as TRL names them (`rewards/chosen`, …).
    public var metrics: [String: Tensor]

    public init(loss: Tensor, metrics: [String: Tensor] = [:]) {
        self.loss = loss
        self.metrics = metrics
    }
}

/// A training method's loss: SFT's token cross-entropy, DPO's preference losses, GRPO's policy
/// loss. The step differentiates ``loss(model:batch:stepWeight:)`` with respect to the trainable
/// tensors.
public protocol Objective {
    associatedtype Batch
    /// The units the step's loss is normalised by (trained tokens for SFT, pairs for DPO), so
    /// gradient accumulation over unequal micro-batches gives the loss of one big batch.
    func weight(of batch: Batch) -> Int
    /// Builds the micro-batch's loss graph; `stepWeight` is the sum of ``weight(of:)`` over the step.
    func loss(model: CausalLanguageModel, batch: Batch, stepWeight: Int) -> ObjectiveOutput
    /// Called after each optimizer step with the step's metrics (objectives with running state,
    /// such as BCO's reward mean, update it here). The default does nothing.
    mutating func stepTaken(metrics: [String: Double])
    /// The whole data-parallel batch's row that the batch's first row is: LoRA dropout draws its
    /// masks for the whole batch, so the ranks drop what one process would. 0 by default (the
    /// rows of a rank are not a run of the whole batch's).
    func firstGlobalRow(of batch: Batch) -> Int
}

extension Objective {
    public mutating func stepTaken(metrics: [String: Double]) {}
    public func firstGlobalRow(of batch: Batch) -> Int { 0 }
}

/// What one optimizer step measured.
public struct StepResult: Sendable {
    /// The step loss (before the update).
    public var loss: Float
    /// Global L2 norm of the gradients before clipping.
    public var gradientNorm: Float
    /// The objective's metrics over the whole step.
    public var metrics: [String: Double]
    /// The step's total objective weight (trained tokens, pairs).
    public var weight: Int
}

/// One optimizer step over any objective: the trainable tensors' gradients summed over the
/// micro-batches (each normalised by the step's total weight), global-norm clipping, then the
/// optimizer's fused update. The trainer, the golden tests and the step benchmark all run this.
public final class TrainStep {
    public let model: CausalLanguageModel
    /// Names of the trained tensors (``CausalLanguageModel/parameters()`` keys), sorted.
    public let trainableNames: [String]
    public var optimizer: any Optimizer
    /// 0 turns clipping off.
    public var maxGradientNorm: Float
    /// With LoRA dropout, the run's seed: each micro-batch draws fresh masks from
    /// (seed, step, micro-batch), so a resumed run draws the same. Nil: no dropout.
    public var dropoutSeed: UInt64?
    /// The ranks to sum the step over (``DataParallel``); nil when this process trains alone.
    public var dataParallel: DataParallel?

    public init(
        model: CausalLanguageModel, trainableNames: [String], optimizer: any Optimizer, maxGradientNorm: Float = 0,
        dropoutSeed: UInt64? = nil
    ) {
        self.model = model
        self.trainableNames = trainableNames.sorted()
        self.optimizer = optimizer
        self.maxGradientNorm = maxGradientNorm
        self.dropoutSeed = dropoutSeed
    }

    /// The step loss, metrics and the gradient of every trainable tensor, summed over
    /// `microBatches`, without updating anything. `step` only seeds dropout.
    public func gradients<O: Objective>(
        _ objective: O, microBatches: [O.Batch], step: Int = 0
    ) -> (loss: Tensor, metrics: [String: Tensor], gradients: [String: Tensor]) {
        let names = trainableNames
        // Every rank normalises by the whole step's weight, so the ranks' sums add up to one batch's.
        let localWeight = microBatches.reduce(0) { $0 + objective.weight(of: $1) }
        let stepWeight = max(1, dataParallel?.sum(localWeight) ?? localWeight)
        let current = model.parameters()
        let trainable = names.map { current[$0]! }
        var gradientSum: [Tensor]?
        var lossSum = Tensor(Float(0))
        var metricSums: [String: Tensor] = [:]
        for (index, batch) in microBatches.enumerated() {
            setDropout(step: step, microBatch: index, firstRow: objective.firstGlobalRow(of: batch))
            var metricNames: [String] = []
            let f = valueAndGrad { (values: [Tensor]) -> [Tensor] in
                try? self.model.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, values)))
                let output = objective.loss(model: self.model, batch: batch, stepWeight: stepWeight)
                metricNames = output.metrics.keys.sorted()
                return [output.loss] + metricNames.map { output.metrics[$0]! }
            }
            let (values, gradients) = f(trainable)
            gradientSum = gradientSum.map { zip($0, gradients).map { $0 + $1 } } ?? gradients
            lossSum = lossSum + values[0]
            for (name, value) in zip(metricNames, values.dropFirst()) {
                metricSums[name] = metricSums[name].map { $0 + value } ?? value
            }
            eval([lossSum] + gradientSum! + Array(metricSums.values))
        }
        try? model.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, trainable)))
        model.setLoRADropout(seed: nil)
        if let dataParallel, let local = gradientSum {
            let metricNames = metricSums.keys.sorted()
            let summed = dataParallel.sum([lossSum] + metricNames.map { metricSums[$0]! } + local)
            lossSum = summed[0]
            metricSums = Dictionary(uniqueKeysWithValues: zip(metricNames, summed[1..<(1 + metricNames.count)].map { $0 }))
            gradientSum = Array(summed.dropFirst(1 + metricNames.count))
            eval([lossSum] + gradientSum!)
        }
        return (lossSum, metricSums, Dictionary(uniqueKeysWithValues: zip(names, gradientSum ?? [])))
    }

    /// One optimizer step at `learningRate`; the model holds the updated tensors afterwards.
    public func callAsFunction<O: Objective>(
        _ objective: O, microBatches: [O.Batch], step: Int, learningRate: Float
    ) throws -> StepResult {
        let (loss, metrics, gradients) = self.gradients(objective, microBatches: microBatches, step: step)
        let (clipped, norm) = clipGlobalNorm(gradients, maxNorm: maxGradientNorm)
        let parameters = model.parameters()
        let current = Dictionary(uniqueKeysWithValues: trainableNames.map { ($0, parameters[$0]!) })
        let updated = optimizer.update(parameters: current, gradients: clipped, learningRate: learningRate)
        try model.update(parameters: updated)
        eval(Array(updated.values) + Array(optimizer.state.values) + [norm])
        let localWeight = microBatches.reduce(0) { $0 + objective.weight(of: $1) }
        return StepResult(
            loss: loss.item(Float.self), gradientNorm: norm.item(Float.self),
            metrics: metrics.mapValues { Double($0.item(Float.self)) },
            weight: dataParallel?.sum(localWeight) ?? localWeight)
    }

    func setDropout(step: Int, microBatch: Int, firstRow: Int = 0) {
        guard let dropoutSeed else {
            model.setLoRADropout(seed: nil)
            return
        }
        var seeds = SplitMix64(seed: dropoutSeed ^ (UInt64(step) << 20 | UInt64(microBatch)))
        model.setLoRADropout(seed: seeds.next(), rowOffset: firstRow)
    }
}
