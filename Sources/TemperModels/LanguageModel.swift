import Foundation
import TemperCore
import TemperTokenizers

/// A model folder ready to use: the network, its tokenizer, chat template and stop tokens.
public final class LanguageModel {
    public let network: CausalLanguageModel
    public let tokenizer: Tokenizer
    public let directory: URL
    /// End-of-sequence ids from config.json, generation_config.json and the tokenizer.
    public let eosTokenIDs: Set<Int>
    public let chatTemplate: ChatTemplate?

    public init(network: CausalLanguageModel, tokenizer: Tokenizer, directory: URL) throws {
        self.network = network
        self.tokenizer = tokenizer
        self.directory = directory
        var eos = Set(network.configuration.eosTokenIDs)
        eos.formUnion(Self.generationConfigEOS(directory))
        if let id = tokenizer.eosTokenID { eos.insert(id) }
        eosTokenIDs = eos
        chatTemplate = try tokenizer.chatTemplate.map { try ChatTemplate($0) }
    }

    /// Loads config, weights and tokenizer files from a Hugging Face folder.
    public static func load(directory: URL) throws -> LanguageModel {
        let network = try CausalLanguageModel.load(directory: directory)
        let tokenizer = try Tokenizer.load(directory: directory)
        return try LanguageModel(network: network, tokenizer: tokenizer, directory: directory)
    }

    static func generationConfigEOS(_ directory: URL) -> [Int] {
        let url = directory.appendingPathComponent("generation_config.json")
        guard let data = FileManager.default.contents(atPath: url.path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [] }
        return ConfigFields(json: json, path: url.path).tokenIDs("eos_token_id")
    }

    /// One chat message.
    public struct Message: Codable, Sendable, Equatable {
        public var role: String
        public var content: String

        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// Renders the model's chat template over `messages`.
    public func renderChat(
        _ messages: [Message], addGenerationPrompt: Bool = true, extraContext: [String: JinjaValue] = [:]
    ) throws -> String {
        guard let chatTemplate else {
            throw ModelError.missingField(
                path: directory.appendingPathComponent("tokenizer_config.json").path, field: "chat_template")
        }
        let values = try messages.map { try JinjaValue.parseJSON(JSONEncoder().encode($0)) }
        return try chatTemplate.render(
            messages: values, addGenerationPrompt: addGenerationPrompt, bosToken: tokenizer.bosToken,
            eosToken: tokenizer.eosToken, extraContext: extraContext)
    }

    /// Token ids of a rendered chat: the template already holds the special tokens, so none are
    /// added (as transformers' `apply_chat_template(tokenize=True)`).
    public func encodeChat(_ messages: [Message], addGenerationPrompt: Bool = true) throws -> [Int] {
        tokenizer.encode(try renderChat(messages, addGenerationPrompt: addGenerationPrompt), addSpecialTokens: false)
    }

    /// Generates from token-id prompts, stopping at EOS ids besides the given stop tokens, and
    /// decodes without special tokens.
    public func generate(
        prompts: [[Int]], parameters: GenerationParameters,
        statistics: UnsafeMutablePointer<GenerationStatistics>? = nil,
        onToken: ((Int, Int) -> Bool)? = nil
    ) -> [GenerationOutput] {
        var parameters = parameters
        parameters.stopTokenIDs.formUnion(eosTokenIDs)
        let tokenizer = self.tokenizer
        let eos = eosTokenIDs
        let generator = Generator(model: network) { ids in
            tokenizer.decode(ids.last.map { eos.contains($0) } == true ? Array(ids.dropLast()) : ids, skipSpecialTokens: true)
        }
        return generator.generate(prompts: prompts, parameters: parameters, statistics: statistics, onToken: onToken)
    }
}
