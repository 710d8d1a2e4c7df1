// Loading a tokenizer folder the way transformers 5 does with `AutoTokenizer.from_pretrained(dir)`:
// `tokenizer.json` (or `vocab.json` + `merges.txt`), `tokenizer_config.json`, `special_tokens_map.json`
// and `chat_template.jinja`.
//
// Two transformers 5 rules shape the result:
// - A `tokenizer_class` with its own pipeline (GPT2Tokenizer, Qwen2Tokenizer) keeps only the
//   vocabulary, merges, added tokens and post-processor of `tokenizer.json`; its normalizer,
//   pre-tokenizer and decoder come from the class.
// - When `tokenizer_config.json` states `add_bos_token` or `add_eos_token`, the post-processor is
//   rebuilt as `[BOS] $A [EOS]` from those flags (TokenizersBackend.update_post_processor).

import Foundation

extension Tokenizer {
    /// Loads the tokenizer in `directory`.
    public static func load(directory: URL) throws -> Tokenizer {
        let fm = FileManager.default
        let tokenizerJSON = directory.appendingPathComponent("tokenizer.json")
        let vocabJSON = directory.appendingPathComponent("vocab.json")
        let mergesTXT = directory.appendingPathComponent("merges.txt")
        let hasTokenizerJSON = fm.fileExists(atPath: tokenizerJSON.path)
        guard hasTokenizerJSON || (fm.fileExists(atPath: vocabJSON.path) && fm.fileExists(atPath: mergesTXT.path)) else {
            throw TokenizerError.missingFiles(directory: directory.path)
        }
        var config = try readJSONObjectIfPresent(directory.appendingPathComponent("tokenizer_config.json")) ?? [:]
        if let map = try readJSONObjectIfPresent(directory.appendingPathComponent("special_tokens_map.json")) {
            for (key, value) in map where config[key] == nil { config[key] = value }
        }
        var chatTemplate = templateString(config["chat_template"])
        let templateFile = directory.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: templateFile.path) {
            do {
                chatTemplate = try String(contentsOf: templateFile, encoding: .utf8)
            } catch {
                throw TokenizerError.unreadable(file: templateFile.path, reason: "\(error)")
            }
        }

        var parts: Parts
        if hasTokenizerJSON {
            guard let json = try readJSONObjectIfPresent(tokenizerJSON) else {
                throw TokenizerError.unreadable(file: tokenizerJSON.path, reason: "missing")
            }
            do {
                parts = try Parts(tokenizerJSON: json)
            } catch {
                throw error.attributed(to: tokenizerJSON.path)
            }
        } else {
            parts = try Parts(vocabFile: vocabJSON, mergesFile: mergesTXT)
        }
        return try build(parts: parts, config: config, chatTemplate: chatTemplate, directory: directory)
    }

    /// Builds a tokenizer from a `tokenizer.json` and `tokenizer_config.json` held in memory.
    public static func load(tokenizerJSON: Data, tokenizerConfigJSON: Data?) throws -> Tokenizer {
        let json = try parseJSONObject(tokenizerJSON, file: "tokenizer.json")
        let config = try tokenizerConfigJSON.map { try parseJSONObject($0, file: "tokenizer_config.json") } ?? [:]
        let parts = try Parts(tokenizerJSON: json)
        return try build(parts: parts, config: config, chatTemplate: templateString(config["chat_template"]),
                         directory: nil)
    }

    // MARK: - Assembly

    /// What a tokenizer file describes, before the config's rules apply.
    struct Parts {
        var vocabulary: [String: Int]
        var merges: [(String, String)]
        var unknownToken: String?
        var fuseUnknown = false
        var byteFallback = false
        var ignoreMerges = false
        var addedTokens: [AddedToken] = []
        var normalizer: Normalizer?
        var preTokenizer: PreTokenizer?
        var postProcessor: PostProcessor?
        var decoder: Decoder?
        var fromTokenizerJSON: Bool

        init(tokenizerJSON json: JSONObject) throws(TokenizerError) {
            guard let model = json["model"] as? JSONObject else {
                throw .invalid(file: "tokenizer.json", field: "model", reason: "is missing")
            }
            let type = model["type"] as? String ?? "BPE"
            guard type == "BPE" else { throw .unsupported(file: "tokenizer.json", field: "model.type", value: type) }
            guard let vocab = model["vocab"] as? [String: Int] else {
                throw .invalid(file: "tokenizer.json", field: "model.vocab", reason: "is not an object of token ids")
            }
            for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
                if let value = model[key] as? String, !value.isEmpty {
                    throw .unsupported(file: "tokenizer.json", field: "model.\(key)", value: value)
                }
            }
            vocabulary = vocab
            merges = try Self.parseMerges(model["merges"])
            unknownToken = model["unk_token"] as? String
            fuseUnknown = model["fuse_unk"] as? Bool ?? false
            byteFallback = model["byte_fallback"] as? Bool ?? false
            ignoreMerges = model["ignore_merges"] as? Bool ?? false
            for (index, item) in (json["added_tokens"] as? [JSONObject] ?? []).enumerated() {
                guard let id = item["id"] as? Int, let content = item["content"] as? String else {
                    throw .invalid(file: "tokenizer.json", field: "added_tokens[\(index)]", reason: "lacks id or content")
                }
                let special = item["special"] as? Bool ?? false
                addedTokens.append(AddedToken(
                    id: id, content: content, special: special, normalized: item["normalized"] as? Bool ?? !special,
                    lstrip: item["lstrip"] as? Bool ?? false, rstrip: item["rstrip"] as? Bool ?? false,
                    singleWord: item["single_word"] as? Bool ?? false))
            }
            if let n = json["normalizer"] as? JSONObject { normalizer = try Normalizer.parse(n) }
            if let p = json["pre_tokenizer"] as? JSONObject { preTokenizer = try PreTokenizer.parse(p) }
            if let d = json["decoder"] as? JSONObject { decoder = try Decoder.parse(d) }
            if let p = json["post_processor"] as? JSONObject {
                let addedIDs = Dictionary(addedTokens.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
                postProcessor = try PostProcessor.parse(p) { addedIDs[$0] ?? vocab[$0] }
            }
            fromTokenizerJSON = true
        }

        /// `vocab.json` + `merges.txt`, as the slow-to-fast conversion reads them.
        init(vocabFile: URL, mergesFile: URL) throws {
            let vocabData = try readFile(vocabFile)
            guard let vocab = try parseJSON(vocabData, file: vocabFile.path) as? [String: Int] else {
                throw TokenizerError.invalid(file: vocabFile.path, field: "(root)", reason: "is not an object of token ids")
            }
            vocabulary = vocab
            guard let text = String(data: try readFile(mergesFile), encoding: .utf8) else {
                throw TokenizerError.unreadable(file: mergesFile.path, reason: "not UTF-8")
            }
            var merges: [(String, String)] = []
            // Lines split on scalars: "\r\n" is one Character, and merges.txt files often use it.
            let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, rawLine) in lines.enumerated() {
                let line = String(rawLine.last == "\r" ? rawLine.dropLast() : rawLine)
                if line.hasPrefix("#version") || line.isEmpty { continue }
                guard let pair = splitMerge(line) else {
                    throw TokenizerError.invalid(file: mergesFile.path, field: "line \(number + 1)", reason: "is not two tokens")
                }
                merges.append(pair)
            }
            self.merges = merges
            fromTokenizerJSON = false
        }

        static func parseMerges(_ value: Any?) throws(TokenizerError) -> [(String, String)] {
            guard let list = value as? [Any] else { return [] }
            var result: [(String, String)] = []
            result.reserveCapacity(list.count)
            for (index, item) in list.enumerated() {
                if let string = item as? String {
                    guard let pair = splitMerge(string) else {
                        throw .invalid(file: "tokenizer.json", field: "model.merges[\(index)]", reason: "is not 'a b'")
                    }
                    result.append(pair)
                } else if let pair = item as? [String], pair.count == 2 {
                    result.append((pair[0], pair[1]))
                } else {
                    throw .invalid(file: "tokenizer.json", field: "model.merges[\(index)]", reason: "is not a pair")
                }
            }
            return result
        }
    }

    /// The pipeline a transformers 5 tokenizer class builds for itself (nil: keep the file's).
    private static func classPipeline(_ className: String?, config: JSONObject)
        -> (normalizer: Normalizer?, preTokenizer: PreTokenizer, decoder: Decoder, defaults: [String: String])?
    {
        let addPrefixSpace = config["add_prefix_space"] as? Bool ?? false
        switch className?.replacingOccurrences(of: "Fast", with: "") {
        case "GPT2Tokenizer":
            return (nil, .byteLevel(addPrefixSpace: addPrefixSpace, useRegex: true), .byteLevel,
                    ["unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"])
        case "Qwen2Tokenizer":
            let split = try! Pattern.regex(GGUFTokenizerConversion.qwen2Split, field: "")
            return (.nfc, .sequence([.split(split, .isolated, invert: false),
                                      .byteLevel(addPrefixSpace: addPrefixSpace, useRegex: false)]), .byteLevel,
                    ["unk_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"])
        default:
            return nil
        }
    }

    private static func build(parts input: Parts, config: JSONObject, chatTemplate: String?, directory: URL?) throws -> Tokenizer {
        var parts = input
        let className = config["tokenizer_class"] as? String
        var defaults: [String: String] = [:]
        if let pipeline = classPipeline(className, config: config) {
            parts.normalizer = pipeline.normalizer
            parts.preTokenizer = pipeline.preTokenizer
            parts.decoder = pipeline.decoder
            defaults = pipeline.defaults
        } else if !parts.fromTokenizerJSON {
            // vocab.json + merges.txt with no known class: GPT-2's byte-level pipeline.
            parts.preTokenizer = .byteLevel(addPrefixSpace: config["add_prefix_space"] as? Bool ?? false, useRegex: true)
            parts.decoder = .byteLevel
        }

        // Added tokens: tokenizer_config.json's added_tokens_decoder, else tokenizer.json's.
        var added: [Int: AddedToken] = [:]
        for token in parts.addedTokens { added[token.id] = token }
        if let decoder = config["added_tokens_decoder"] as? JSONObject {
            for (key, value) in decoder {
                guard let id = Int(key), let item = value as? JSONObject, let content = item["content"] as? String else {
                    throw TokenizerError.invalid(file: "tokenizer_config.json", field: "added_tokens_decoder.\(key)",
                                                 reason: "lacks an integer key or content")
                }
                let special = item["special"] as? Bool ?? false
                added[id] = AddedToken(
                    id: id, content: content, special: special, normalized: item["normalized"] as? Bool ?? !special,
                    lstrip: item["lstrip"] as? Bool ?? false, rstrip: item["rstrip"] as? Bool ?? false,
                    singleWord: item["single_word"] as? Bool ?? false)
            }
        }

        func named(_ key: String) -> String? {
            if let value = config[key] {
                if let string = value as? String { return string }
                if let object = value as? JSONObject { return object["content"] as? String }
                return nil  // explicit null
            }
            return defaults[key]
        }
        let bos = named("bos_token"), eos = named("eos_token"), pad = named("pad_token"), unk = named("unk_token")
        var extra: [String] = []
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            for item in config[key] as? [Any] ?? [] {
                if let s = item as? String { extra.append(s) }
                if let o = item as? JSONObject, let s = o["content"] as? String { extra.append(s) }
            }
        }

        let model: BPEModel
        do {
            model = try BPEModel(vocabulary: parts.vocabulary, merges: parts.merges, unknownToken: parts.unknownToken,
                                 fuseUnknown: parts.fuseUnknown, byteFallback: parts.byteFallback,
                                 ignoreMerges: parts.ignoreMerges)
        } catch {
            throw error.attributed(to: directory.map { $0.appendingPathComponent(parts.fromTokenizerJSON ? "tokenizer.json" : "merges.txt").path } ?? "tokenizer.json")
        }

        // transformers adds the named special tokens that are not yet added tokens.
        var contents = Dictionary(added.values.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        var nextID = max(parts.vocabulary.values.max() ?? -1, added.keys.max() ?? -1) + 1
        for token in [bos, eos, unk, pad].compactMap({ $0 }) + extra where contents[token] == nil {
            let id: Int
            if let existing = parts.vocabulary[token] {
                id = existing
            } else {
                id = nextID
                nextID += 1
            }
            added[id] = AddedToken(id: id, content: token, special: true, normalized: false)
            contents[token] = id
        }

        // The post-processor: rebuilt from add_bos_token/add_eos_token when the config states either.
        var postProcessor = parts.postProcessor
        if config["add_bos_token"] != nil || config["add_eos_token"] != nil || postProcessor == nil {
            let addBOS = config["add_bos_token"] as? Bool ?? false
            let addEOS = config["add_eos_token"] as? Bool ?? false
            let lookup = { (token: String?) -> [Int] in
                guard let token, let id = contents[token] ?? parts.vocabulary[token] else { return [] }
                return [id]
            }
            postProcessor = .template(prefix: addBOS ? lookup(bos) : [], suffix: addEOS ? lookup(eos) : [])
        }

        return Tokenizer(
            model: model, normalizer: parts.normalizer, preTokenizer: parts.preTokenizer, postProcessor: postProcessor,
            decoder: parts.decoder, addedTokens: added.values.sorted { $0.id < $1.id }, bosToken: bos, eosToken: eos,
            padToken: pad, unknownToken: unk, chatTemplate: chatTemplate)
    }

    private static func templateString(_ value: Any?) -> String? {
        if let string = value as? String { return string }
        if let list = value as? [JSONObject] {
            let entry = list.first { ($0["name"] as? String) == "default" } ?? list.first
            return entry?["template"] as? String
        }
        return nil
    }
}

/// "a b" → ("a", "b"), split on scalars (a Character-level split would glue a space to a following
/// combining mark); nil unless there is exactly one space.
func splitMerge(_ merge: String) -> (String, String)? {
    let parts = merge.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
    guard parts.count == 2 else { return nil }
    return (String(parts[0]), String(parts[1]))
}

// MARK: - JSON helpers

func readFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
    }
}

func parseJSON(_ data: Data, file: String) throws -> Any {
    do {
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    } catch {
        throw TokenizerError.malformedJSON(file: file, reason: "\(error.localizedDescription)")
    }
}

func parseJSONObject(_ data: Data, file: String) throws -> JSONObject {
    guard let object = try parseJSON(data, file: file) as? JSONObject else {
        throw TokenizerError.invalid(file: file, field: "(root)", reason: "is not a JSON object")
    }
    return object
}

private func readJSONObjectIfPresent(_ url: URL) throws -> JSONObject? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    return try parseJSONObject(try readFile(url), file: url.path)
}
