import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN

/// What a checkpoint's `state.json` holds besides the tensors.
public struct CheckpointState: Codable, Sendable, Equatable {
    /// Optimizer steps completed.
    public var step: Int
    /// Where the training data's shuffled order stands.
    public var cursor: DataCursor
    public var optimizerStep: Int
    /// The recipe fields a resumed run must share (method, adapters, optimizer, seed, data).
    public var identity: [String: String]
    /// The objective's running state (DPO's BCO reward mean), restored on resume.
    public var objectiveState: [String: Double]

    public init(
        step: Int, cursor: DataCursor, optimizerStep: Int, identity: [String: String],
        objectiveState: [String: Double] = [:]
    ) {
        self.step = step
        self.cursor = cursor
        self.optimizerStep = optimizerStep
        self.identity = identity
        self.objectiveState = objectiveState
    }
}

/// Checkpoints under `<output>/checkpoints/step-NNNNNN/`: the trainable tensors, the optimizer
/// state and `state.json`, written to a temporary folder and renamed into place, so a crash
/// never leaves a half checkpoint; only the newest `keep` are kept. Restoring one gives a
/// bit-identical continuation.
public struct Checkpointer: Sendable {
    public let directory: URL
    public let keep: Int

    public init(output: URL, keep: Int) {
        directory = output.appendingPathComponent("checkpoints")
        self.keep = keep
    }

    public func save(
        _ state: CheckpointState, model: CausalLanguageModel, trainableNames: [String], optimizer: any Optimizer
    ) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let final = folder(step: state.step)
        let temporary = directory.appendingPathComponent(".tmp-" + final.lastPathComponent)
        try? FileManager.default.removeItem(at: temporary)
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let parameters = model.parameters()
        try Safetensors.save(
            Dictionary(uniqueKeysWithValues: trainableNames.map { ($0, parameters[$0]!) }),
            to: temporary.appendingPathComponent("trainable.safetensors"))
        try Safetensors.save(optimizer.state, to: temporary.appendingPathComponent("optimizer.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: temporary.appendingPathComponent("state.json"))
        try? FileManager.default.removeItem(at: final)
        try FileManager.default.moveItem(at: temporary, to: final)
        for old in folders().dropLast(keep) { try? FileManager.default.removeItem(at: old) }
        return final
    }

    /// Checkpoint folders, oldest first.
    /// Where the checkpoint of `step` is (or goes).
    public func folder(step: Int) -> URL { directory.appendingPathComponent(String(format: "step-%06d", step)) }

    public func folders() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("step-") }.sorted().map { directory.appendingPathComponent($0) }
    }

    public var latest: URL? { folders().last }

    /// A checkpoint's `state.json`, checked against this run's identity; the error names the
    /// fields that differ.
    public func state(of folder: URL, identity: [String: String]) throws -> CheckpointState {
        let url = folder.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TrainingError.resume(path: folder.path, reason: "no state.json")
        }
        let state: CheckpointState
        do {
            state = try JSONDecoder().decode(CheckpointState.self, from: data)
        } catch {
            throw TrainingError.resume(path: url.path, reason: "unreadable: \(error)")
        }
        let differing = Set(state.identity.keys).union(identity.keys).filter { state.identity[$0] != identity[$0] }.sorted()
        guard differing.isEmpty else {
            throw TrainingError.resume(
                path: folder.path,
                reason: "the checkpoint was written by a different recipe (\(differing.joined(separator: ", ")) differ)")
        }
        return state
    }

    /// Loads a checkpoint's trainable tensors into `model` and its state into `optimizer`.
    public func restore(
        _ folder: URL, state: CheckpointState, model: CausalLanguageModel, optimizer: inout any Optimizer
    ) throws {
        let trainable = try Safetensors.load(folder.appendingPathComponent("trainable.safetensors")).tensors
        try model.update(parameters: trainable)
        let moments = try Safetensors.load(folder.appendingPathComponent("optimizer.safetensors")).tensors
        optimizer.restore(state: moments, step: state.optimizerStep)
    }
}
