"""PyTorch + transformers side of `temper bench serve`: loads the model folder given as the first
argument, then answers one JSON line per request line on stdin.

A request is {"requests": [{"messages": [...], "max_tokens": N}, ...], "batch_size": B}: the same
requests the server gets, run in arrival order through `generate` in static batches of B (left
padded, greedy, each batch running to its longest max_tokens; EOS ignored, as the server's
requests ignore it). The answer is {"wall_seconds", "completion_tokens" (the requested tokens, not
the padding steps), "ttft": [seconds from the start to each request's first token]}.
"""
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList


class FirstStep(LogitsProcessor):
    """Records when the first set of next-token scores exists (the batch's first token)."""

    def __init__(self):
        self.at = None

    def __call__(self, input_ids, scores):
        if self.at is None:
            self.at = time.perf_counter()
        return scores


def main():
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    tokenizer.padding_side = "left"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    print(json.dumps({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        requests, size = job["requests"], job["batch_size"]
        texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True) for r in requests]
        ttft, tokens = [], 0
        started = time.perf_counter()
        for start in range(0, len(requests), size):
            batch = requests[start:start + size]
            encoded = tokenizer(texts[start:start + size], return_tensors="pt", padding=True, add_special_tokens=False)
            longest = max(r["max_tokens"] for r in batch)
            first = FirstStep()
            with torch.inference_mode():
                model.generate(**encoded, max_new_tokens=longest, min_new_tokens=longest, do_sample=False,
                               pad_token_id=pad, logits_processor=LogitsProcessorList([first]))
            ttft += [first.at - started] * len(batch)
            tokens += sum(r["max_tokens"] for r in batch)
        wall = time.perf_counter() - started
        print(json.dumps({"wall_seconds": wall, "completion_tokens": tokens, "ttft": ttft}), flush=True)


if __name__ == "__main__":
    main()
