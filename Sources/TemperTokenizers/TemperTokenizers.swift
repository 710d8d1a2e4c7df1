// TemperTokenizers: byte-level BPE tokenizers, GGUF tokenizer metadata and Jinja chat templates,
// in pure Swift (no MLX), so that tools which only tokenize or render prompts stay light.
