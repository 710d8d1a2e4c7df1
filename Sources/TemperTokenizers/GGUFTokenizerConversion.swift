// GGUF tokenizer metadata → `tokenizer.json` + `tokenizer_config.json`, built as transformers 5.24's
// GGUF loader builds its tokenizer (integrations/gguf/gguf_tokenizer_mapping.py: byte_level_tokenizer,
// add_gguf_special_tokens, set_split_regex; get_gguf_tokenizer for the config), so that transformers
// loading the written folder, and `Tokenizer.load(directory:)`, tokenize as
// `AutoTokenizer.from_pretrained(dir, gguf_file=...)` does. Only byte-level BPE vocabularies
// (`tokenizer.ggml.model == "gpt2"`) are converted.

import Foundation

public enum GGUFTokenizerConversion {
    static let llama3Split =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen35Split =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let tekkenSplit =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt4oSplit =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// `tokenizer.ggml.pre` → the split pattern transformers puts before `ByteLevel` (GGUF_PRE_TOKENIZER_SPLITS).
    /// Names not listed keep GPT-2's `ByteLevel(use_regex: true)`.
    static let preTokenizerSplits: [String: String] = {
        var table: [String: String] = [:]
        for name in ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                     "jina-v5-nano", "dbrx", "smaug-bpe"] { table[name] = llama3Split }
        for name in ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"] { table[name] = qwen2Split }
        for name in ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"] { table[name] = gpt4oSplit }
        table["tekken"] = tekkenSplit
        table["qwen35"] = qwen35Split
        return table
    }()

    private static let controlType = 3
    private static let userDefinedType = 4

    /// The two files for the tokenizer described by `metadata`.
    public static func files(from metadata: GGUFMetadata) throws -> (tokenizerJSON: Data, tokenizerConfigJSON: Data) {
        let file = "GGUF metadata"
        let model = metadata.string("tokenizer.ggml.model") ?? "(missing)"
        guard model == "gpt2" else {
            throw TokenizerError.unsupported(file: file, field: "tokenizer.ggml.model", value: model)
        }
        guard let tokens = metadata.strings("tokenizer.ggml.tokens") else {
            throw TokenizerError.invalid(file: file, field: "tokenizer.ggml.tokens", reason: "is missing or not strings")
        }
        guard let merges = metadata.strings("tokenizer.ggml.merges") else {
            throw TokenizerError.invalid(file: file, field: "tokenizer.ggml.merges", reason: "is missing or not strings")
        }
        let tokenTypes = metadata.ints("tokenizer.ggml.token_type") ?? []

        // Vocabulary: tokens outside the byte alphabet are respelled from their UTF-8 (later duplicates win).
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() {
            vocabulary[ByteLevel.isSpelled(token) ? token : ByteLevel.encode(token.utf8)] = index
        }
        var mergePairs: [[String]] = []
        mergePairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let (left, right) = splitMerge(merge) else {
                throw TokenizerError.invalid(file: file, field: "tokenizer.ggml.merges[\(index)]", reason: "is not 'a b'")
            }
            mergePairs.append([left, right])
        }

        // Added tokens, in the order transformers adds them.
        var added: [(content: String, id: Int, special: Bool)] = []
        var addedIDs: [String: Int] = [:]
        func add(_ content: String, special: Bool) {
            if addedIDs[content] != nil { return }
            let id: Int
            if let existing = vocabulary[content] {
                id = existing
            } else {
                let maxAdded = added.map(\.id).max()
                id = maxAdded.map { $0 >= vocabulary.count ? $0 + 1 : vocabulary.count } ?? vocabulary.count
            }
            added.append((content, id, special))
            addedIDs[content] = id
        }
        // GPT2Tokenizer's own defaults (unk = bos = eos = "<|endoftext|>"), added even when the file lacks it.
        add("<|endoftext|>", special: true)
        for (token, type) in zip(tokens, tokenTypes) where type == controlType && ByteLevel.isSpelled(token) {
            add(token, special: true)
        }
        for (token, type) in zip(tokens, tokenTypes) where type == userDefinedType {
            if vocabulary[token] != nil || addedIDs[token] != nil { add(token, special: false) }
        }

        func tokenName(_ key: String) -> String? {
            guard let id = metadata.int("tokenizer.ggml.\(key)"), id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        let bos = tokenName("bos_token_id"), eos = tokenName("eos_token_id")
        let unk = tokenName("unknown_token_id"), pad = tokenName("padding_token_id")
        for name in [bos, eos, unk, pad].compactMap({ $0 }) { add(name, special: true) }
        let addBOS = metadata.bool("tokenizer.ggml.add_bos_token") ?? false
        let addEOS = metadata.bool("tokenizer.ggml.add_eos_token") ?? false

        // Pipeline.
        let byteLevelNoRegex: JSONValue = .object([
            ("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", false),
        ])
        var preTokenizer: JSONValue = .object([
            ("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", true),
        ])
        if let pre = metadata.string("tokenizer.ggml.pre"), let split = preTokenizerSplits[pre] {
            preTokenizer = .object([
                ("type", "Sequence"),
                ("pretokenizers", .array([
                    .object([("type", "Split"), ("pattern", .object([("Regex", .string(split))])),
                             ("behavior", "Isolated"), ("invert", false)]),
                    byteLevelNoRegex,
                ])),
            ])
        }
        var single: [JSONValue] = []
        var specialTokens: [(String, JSONValue)] = []
        func special(_ token: String?) {
            guard let token, let id = addedIDs[token] ?? vocabulary[token] else { return }
            single.append(.object([("SpecialToken", .object([("id", .string(token)), ("type_id", 0)]))]))
            specialTokens.append((token, .object([
                ("id", .string(token)), ("ids", .array([.int(id)])), ("tokens", .array([.string(token)])),
            ])))
        }
        if addBOS { special(bos) }
        single.append(.object([("Sequence", .object([("id", "A"), ("type_id", 0)]))]))
        if addEOS { special(eos) }

        func addedEntry(_ entry: (content: String, id: Int, special: Bool), withID: Bool) -> JSONValue {
            var fields: [(String, JSONValue)] = withID ? [("id", .int(entry.id))] : []
            fields += [("content", .string(entry.content)), ("single_word", false), ("lstrip", false),
                       ("rstrip", false), ("normalized", false), ("special", .bool(entry.special))]
            return .object(fields)
        }
        let sortedAdded = added.sorted { $0.id < $1.id }
        let vocabEntries = vocabulary.sorted { $0.value < $1.value }.map { ($0.key, JSONValue.int($0.value)) }
        let tokenizer: JSONValue = .object([
            ("version", "1.0"),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(sortedAdded.map { addedEntry($0, withID: true) })),
            ("normalizer", .null),
            ("pre_tokenizer", preTokenizer),
            ("post_processor", .object([
                ("type", "TemplateProcessing"),
                ("single", .array(single)),
                ("pair", .array(single + [.object([("Sequence", .object([("id", "B"), ("type_id", 1)]))])])),
                ("special_tokens", .object(specialTokens)),
            ])),
            ("decoder", .object([
                ("type", "ByteLevel"), ("add_prefix_space", true), ("trim_offsets", true), ("use_regex", true),
            ])),
            ("model", .object([
                ("type", "BPE"), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", ""),
                ("end_of_word_suffix", ""), ("fuse_unk", false), ("byte_fallback", false), ("ignore_merges", false),
                ("vocab", .object(vocabEntries)),
                ("merges", .array(mergePairs.map { .array([.string($0[0]), .string($0[1])]) })),
            ])),
        ])

        func name(_ token: String?) -> JSONValue { token.map(JSONValue.string) ?? .null }
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", "TokenizersBackend"),
            ("backend", "tokenizers"),
            ("bos_token", name(bos)), ("eos_token", name(eos)), ("unk_token", name(unk)), ("pad_token", name(pad)),
            ("add_bos_token", .bool(addBOS)), ("add_eos_token", .bool(addEOS)),
            ("clean_up_tokenization_spaces", false),
        ]
        if let architecture = metadata.string("general.architecture"),
           let context = metadata.int("\(architecture).context_length") {
            config.append(("model_max_length", .int(context)))
        }
        if let template = metadata.string("tokenizer.chat_template") { config.append(("chat_template", .string(template))) }
        config.append(("added_tokens_decoder", .object(sortedAdded.map { (String($0.id), addedEntry($0, withID: false)) })))
        return (tokenizer.serialized(), JSONValue.object(config).serialized(pretty: true))
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` for the GGUF at `gguf` into `directory`.
    public static func write(from gguf: URL, to directory: URL) throws {
        let files = try files(from: try GGUFMetadata.read(gguf))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try files.tokenizerJSON.write(to: directory.appendingPathComponent("tokenizer.json"))
        try files.tokenizerConfigJSON.write(to: directory.appendingPathComponent("tokenizer_config.json"))
    }
}
