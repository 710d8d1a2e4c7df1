"""trl side of `temper bench sft --dataset FILE`: real LoRA SFT with trl's SFTTrainer and its
defaults for prompt-completion data (loss on completions only, no packing).

Usage: sft_trl_peer.py MODEL_DIR DATA.jsonl STEPS BATCH MAX_LENGTH [fp32]
With "fp32", trl's two CPU-hostile defaults are turned off (bf16 autocast and gradient
checkpointing), for a like-for-like float32 comparison.
Prints one JSON line: {"seconds": training wall time, "steps": N, "trained_tokens": estimated
completion tokens seen, "peak_rss_mb": ...}. Chat records ({"messages": [...]}) become
conversational prompt/completion pairs (everything before the last assistant turn / that turn).
"""
import json
import sys
import tempfile
import time

import peft
import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from resident_memory import peak_rss_mb

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    model_dir, data, steps, batch, max_length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    records = []
    with open(data) as f:
        for line in f:
            messages = json.loads(line)["messages"]
            records.append({"prompt": messages[:-1], "completion": messages[-1:]})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = trl.SFTConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-4,
        logging_steps=10_000, save_strategy="no", report_to="none", max_length=max_length, use_cpu=True,
        dataloader_num_workers=0, seed=0,
        **({"bf16": False, "gradient_checkpointing": False} if sys.argv[6:] == ["fp32"] else {}))
    lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(records),
                             processing_class=tokenizer, peft_config=lora)
    # Completion tokens per record: the full conversation's tokens less the prompt's (with the
    # generation prompt), as trl's collator splits them.
    def count(messages, **kwargs):
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])
    trained = [count(r["prompt"] + r["completion"]) - count(r["prompt"], add_generation_prompt=True) for r in records]
    mean_trained = sum(trained) / len(trained)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "steps": steps, "trained_tokens": mean_trained * steps * batch,
                      "peak_rss_mb": peak_rss_mb(),
                      "trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
