"""PyTorch + transformers side of `temper bench generate`: loads the model folder given as the
first argument, then answers one JSON line per request line on stdin.

A request is {"batch": B, "prompt_length": P, "new_tokens": N, "seed": S}; the prompts are the
token ids Temper sends ("prompts") so both sides run identical work. The answer is
{"prefill_seconds": t1, "decode_seconds": t2}: t1 is one forward pass over the prompts (what
generate's first step costs), t2 is generate's total time less t1 for N greedy tokens.
"""
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    model.eval()
    print(json.dumps({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        ids = torch.tensor(request["prompts"])
        mask = torch.ones_like(ids)
        n = request["new_tokens"]
        with torch.inference_mode():
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, use_cache=True)
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0)
            total = time.perf_counter() - start
        print(json.dumps({"prefill_seconds": prefill, "decode_seconds": max(total - prefill, 1e-9)}), flush=True)


if __name__ == "__main__":
    main()
