"""trl side of `temper bench dpo`: real LoRA DPO with trl's DPOTrainer on pre-tokenized pairs.

Usage: dpo_trl_peer.py MODEL_DIR PAIRS.json STEPS BATCH [fp32]
PAIRS.json is a JSON list of {"prompt_ids": [...], "chosen_ids": [...], "rejected_ids": [...]}, the
exact token ids Temper trains on. The policy is the float32 base with a LoRA adapter (r 16, alpha 32,
dropout 0.05, all seven projections); the reference is the same base with the adapter disabled,
computed every step (precompute_ref_log_probs False). Sigmoid loss, beta 0.1, learning rate 5e-6.

Defaults: trl 1.16's own, which on CPU means bf16 autocast (DPOConfig's bf16 defaults to True when
fp16 is unset; accelerate then runs forward passes under torch.autocast("cpu", bfloat16) while the
weights stay float32) and gradient checkpointing (DPOConfig defaults it to True; transformers 5
checkpoints non-reentrantly; the reference forward runs with it switched off). dropout is disabled in
the model (disable_dropout True), so the LoRA dropout is inert too. With "fp32", bf16 and gradient
checkpointing are turned off, for a like-for-like float32 comparison.

Pre-tokenized data: trl 1.16 has no switch for it. DPOTrainer._prepare_dataset always extracts a
prompt, appends EOS to the chosen/rejected text and tokenizes, and only vision datasets skip it. So
PreTokenizedDPOTrainer overrides _prepare_dataset to hand a dataset that already has prompt_ids,
chosen_ids and rejected_ids through untouched; the collator (DataCollatorForPreference) consumes
exactly those columns. No EOS is appended. All sequences in a Temper file have the same length, so
nothing is padded and max_length (1024) truncates nothing.

The processing class is the model folder's tokenizer; a folder without one (a test fixture) gets a
minimal in-memory word-level tokenizer over the model's vocabulary ("<t0>", "<t1>", ..., EOS from
the config), which trl needs only for the pad token id.

Timing: training only, from the end of step 1 (an untimed warm-up) to the end of the last step,
by a TrainerCallback that records the wall clock at each on_step_end (after the optimizer step).
With STEPS 1 there is nothing after the warm-up, so that step is timed instead.
Prints one JSON line on stdout: {"seconds", "steps", "step_seconds", "pairs_per_second",
"peak_rss_mb", "trl", "transformers", "torch", "bf16", "gradient_checkpointing"}; the rest goes to
stderr.
"""
import contextlib
import json
import sys
import tempfile
import time

import peft
import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from resident_memory import peak_rss_mb

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


class PreTokenizedDPOTrainer(trl.DPOTrainer):
    """DPOTrainer that trains on prompt_ids/chosen_ids/rejected_ids as given (see the docstring)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if all(column in dataset.column_names for column in COLUMNS):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)


class StepClock(TrainerCallback):
    """Wall clock at the start of training and at the end of every optimizer step."""

    def __init__(self):
        self.begin = None
        self.ends = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def load_tokenizer(model_dir):
    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError) as error:
        print(f"no tokenizer in {model_dir} ({type(error).__name__}); using a minimal in-memory one",
              file=sys.stderr)
    from tokenizers import Tokenizer, models
    config = AutoConfig.from_pretrained(model_dir).get_text_config()
    vocab = {f"<t{i}>": i for i in range(config.vocab_size)}
    eos = config.eos_token_id[0] if isinstance(config.eos_token_id, list) else config.eos_token_id
    eos = 0 if eos is None else eos
    special = {"eos_token": f"<t{eos}>", "unk_token": f"<t{eos}>"}
    if config.pad_token_id is not None:
        special["pad_token"] = f"<t{config.pad_token_id}>"
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special["unk_token"]))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def main():
    # trainer.train() prints its summary (and any log) on stdout; only the JSON line may go there.
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = run()
    print(json.dumps(result), file=stdout)


def run():
    model_dir, pairs_file, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fp32 = sys.argv[5:] == ["fp32"]
    with open(pairs_file) as f:
        pairs = [{column: [int(t) for t in pair[column]] for column in COLUMNS} for pair in json.load(f)]
    transformers.set_seed(0)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    longest = max(len(p["prompt_ids"]) + max(len(p["chosen_ids"]), len(p["rejected_ids"])) for p in pairs)
    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, gradient_accumulation_steps=1,
        max_steps=steps, learning_rate=5e-6, beta=0.1, loss_type="sigmoid", max_length=max(1024, longest),
        precompute_ref_log_probs=False, logging_steps=10_000, save_strategy="no", report_to="none",
        use_cpu=True, dataloader_num_workers=0, seed=0,
        **({"bf16": False, "gradient_checkpointing": False} if fp32 else {}))
    lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")
    clock = StepClock()
    trainer = PreTokenizedDPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(pairs),
                                     processing_class=tokenizer, peft_config=lora, callbacks=[clock])
    print(f"bf16={config.bf16} gradient_checkpointing={config.gradient_checkpointing} "
          f"gradient_checkpointing_kwargs={config.gradient_checkpointing_kwargs} "
          f"mixed_precision={trainer.accelerator.mixed_precision} threads={torch.get_num_threads()} "
          f"pairs={len(pairs)} longest={longest}", file=sys.stderr)
    trainer.train()
    marks = [clock.begin] + clock.ends
    step_seconds = [b - a for a, b in zip(marks, marks[1:])]
    timed = step_seconds[1:] if len(step_seconds) > 1 else step_seconds
    seconds = sum(timed)
    return {"seconds": seconds, "steps": len(timed), "step_seconds": timed,
            "pairs_per_second": len(timed) * batch / seconds if seconds > 0 else 0.0,
            "peak_rss_mb": peak_rss_mb(),
            "trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
            "bf16": bool(config.bf16), "gradient_checkpointing": bool(config.gradient_checkpointing)}


if __name__ == "__main__":
    main()
