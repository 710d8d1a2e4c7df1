"""PyTorch + transformers + peft side of `temper bench sft`: loads the model folder given as the
first argument and answers one JSON line per request line on stdin.

A request is {"method": "lora"|"full", "rank": R, "ids": [[...]], "steps": K}; every token is
labelled. The model gets a fresh LoRA (all seven projections, PEFT's init) or is fully trained,
with torch.optim.AdamW (fused=True where available); the answer is {"seconds": [...]} for K timed
steps (forward, backward, optimizer step) after one warm-up step, and {"peak_rss_mb": ...}: the
peak resident set during those steps (the peak is reset after loading, as Temper's side does).
"""
import json
import sys
import time

import peft
import torch
import transformers
from transformers import AutoModelForCausalLM

from resident_memory import peak_rss_mb, reset_peak_rss

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    folder = sys.argv[1]
    print(json.dumps({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__,
                      "peft": peft.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        if request["method"] == "lora":
            config = peft.LoraConfig(r=request["rank"], lora_alpha=2 * request["rank"], lora_dropout=0.0,
                                     target_modules=TARGETS, task_type="CAUSAL_LM")
            model = peft.get_peft_model(model, config)
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        try:
            optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        ids = torch.tensor(request["ids"])
        seconds = []
        reset_peak_rss()
        for step in range(request["steps"] + 1):
            start = time.perf_counter()
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step > 0:
                seconds.append(time.perf_counter() - start)
        peak = peak_rss_mb()
        del model, optimizer
        print(json.dumps({"seconds": seconds, "peak_rss_mb": peak}), flush=True)


if __name__ == "__main__":
    main()
