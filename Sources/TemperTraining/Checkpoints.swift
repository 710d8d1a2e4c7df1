import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN

/// One JSON object per line, appended and flushed as the run goes (the gallery plots it).
final class MetricsLog {
    let handle: FileHandle

    init(url: URL) throws {
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw TrainingError.unreadableFile(path: url.path, reason: "cannot open for writing")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ record: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        line.append(0x0A)
        handle.write(line)
    }

    /// Keeps only the records of steps ≤ `step` (a resumed run rewrites what follows).
    static func truncate(_ url: URL, afterStep step: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { return }
        let kept = data.split(separator: 0x0A).filter { line in
            let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            return (record?["step"] as? Int ?? 0) <= step
        }
        var out = Data()
        for line in kept { out.append(contentsOf: line); out.append(0x0A) }
        try writeFileAtomically(out, to: url)
    }

    deinit { try? handle.close() }
}

/// What a checkpoint's `state.json` holds besides the tensors.
struct CheckpointState: Codable {
    var step: Int
    var cursor: DataCursor
    var optimizerStep: Int
    var recipe: Recipe
}

extension SFTTrainer {
    /// Writes `checkpoints/step-NNNNNN/` through a temporary folder renamed into place, then keeps
    /// only the newest `keep_checkpoints`.
    func saveCheckpoint(
        step: Int, network: CausalLanguageModel, names: [String], optimizer: AdamW, cursor: DataCursor
    ) throws -> URL {
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        let final = checkpoints.appendingPathComponent(String(format: "step-%06d", step))
        let temporary = checkpoints.appendingPathComponent(".tmp-" + final.lastPathComponent)
        try? FileManager.default.removeItem(at: temporary)
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let parameters = network.parameters()
        try Safetensors.save(
            Dictionary(uniqueKeysWithValues: names.map { ($0, parameters[$0]!) }),
            to: temporary.appendingPathComponent("trainable.safetensors"))
        try Safetensors.save(optimizer.state, to: temporary.appendingPathComponent("optimizer.safetensors"))
        let state = CheckpointState(step: step, cursor: cursor, optimizerStep: optimizer.step, recipe: recipe)
        try JSONEncoder().encode(state).write(to: temporary.appendingPathComponent("state.json"))
        try? FileManager.default.removeItem(at: final)
        try FileManager.default.moveItem(at: temporary, to: final)
        let all = try checkpointFolders()
        for old in all.dropLast(recipe.keepCheckpoints) { try? FileManager.default.removeItem(at: old) }
        return final
    }

    func checkpointFolders() throws -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
        return names.filter { $0.hasPrefix("step-") }.sorted().map { checkpoints.appendingPathComponent($0) }
    }

    func latestCheckpoint() throws -> URL? { try checkpointFolders().last }

    /// A checkpoint's `state.json`, checked against this run's recipe.
    func readState(_ folder: URL) throws -> CheckpointState {
        let stateURL = folder.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: stateURL.path) else {
            throw TrainingError.resume(path: folder.path, reason: "no state.json")
        }
        let state = try JSONDecoder().decode(CheckpointState.self, from: data)
        guard state.recipe.method == recipe.method, state.recipe.lora == recipe.lora,
            state.recipe.seed == recipe.seed, state.recipe.data == recipe.data
        else {
            throw TrainingError.resume(path: folder.path, reason: "the checkpoint was written by a different recipe (method, LoRA settings, seed or data)")
        }
        return state
    }

    /// Loads a checkpoint's trainable tensors and optimizer moments.
    func restore(_ folder: URL, state: CheckpointState, network: CausalLanguageModel, optimizer: inout AdamW) throws {
        let trainable = try Safetensors.load(folder.appendingPathComponent("trainable.safetensors")).tensors
        try network.update(parameters: trainable)
        let moments = try Safetensors.load(folder.appendingPathComponent("optimizer.safetensors")).tensors
        optimizer.restore(state: moments, step: state.optimizerStep)
    }
}
