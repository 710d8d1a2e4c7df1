"""trl side of `temper bench grpo`: real LoRA GRPO with trl's GRPOTrainer, generating with its default
transformers `generate` (no vLLM, no continuous batching), on a prompt-only math dataset.

Usage: grpo_trl_peer.py MODEL_DIR PROMPTS.jsonl STEPS [--num-generations 4] [--prompts-per-step 4]
                        [--max-completion-length 64] [--fixed-length] [--learning-rate 1e-6]
                        [--lora-dropout 0.0] [--fp32]
PROMPTS.jsonl lines are {"prompt": [{"role": "user", "content": ...}], "answer": "<number>"} (for
example Data/grpo-arithmetic-train.jsonl): trl's conversational prompt format, so trl applies the
model folder's chat template (add_generation_prompt) itself. The folder must hold a tokenizer.

Workload. One optimizer step = one rollout of prompts_per_step prompts x G completions, then one
forward/backward over all of them, then one AdamW step:
per_device_train_batch_size = prompts_per_step * G (trl counts completions, not prompts),
gradient_accumulation_steps 1, steps_per_generation 1 (so generation_batch_size is the same
prompts_per_step * G), num_iterations 1. With that alignment trl computes no "old" log-probs (the
sampling policy is the current one, so the ratio is exactly 1 and no extra no-grad forward runs), and
with beta 0.0 there is no reference model and no reference forward either. Each step therefore costs
exactly: one batched generate of prompts_per_step * G sequences, the reward, and one training
forward+backward+optimizer step. The trainer's RepeatSampler draws prompts_per_step distinct prompts
per step (shuffled with seed 0) and repeats each G times consecutively.

Policy: the float32 base with a PEFT LoRA adapter, r 16, alpha 32, all seven projections (q, k, v, o,
gate, up, down). LoRA dropout is 0.0 (PEFT's own default), not the 0.05 the SFT/DPO peers pass: GRPO
keeps dropout on (GRPOConfig.disable_dropout defaults to False, unlike DPOConfig), and trl samples with
the model in train mode (Trainer.training_step calls model.train() before _prepare_inputs generates),
so a nonzero LoRA dropout would randomise both sampling and the training forward. SmolLM2's own
attention dropout is 0.0, so with lora_dropout 0.0 no dropout runs anywhere, which is what Temper does.

GRPOConfig values, trl 1.16's defaults unless marked: loss_type "dapo" (token-level: the per-token loss
is summed over all completion tokens of the batch and divided by their count), beta 0.0, epsilon 0.2
(epsilon_high 0.2), importance_sampling_level "token", scale_rewards "group" (advantage = (r - group
mean) / (group std + 1e-4)), temperature 1.0, top_p 1.0, top_k 0 (off), min_p None, repetition_penalty
1.0, learning_rate 1e-6 (trl's GRPO default; the timing does not depend on it), AdamW (optim
adamw_torch_fused, transformers 5's default) with weight decay 0.0, betas (0.9, 0.999), eps 1e-8,
linear decay to 0 over STEPS, no warm-up, max_grad_norm 1.0, mask_truncated_completions False,
seed 0; marked: num_generations G (default 8 in trl; 4 here), max_completion_length 64 (trl: 512).
Prompts are never truncated (trl 1.16 has no max_prompt_length).

Reward: one function, math_reward: in the completion text, commas between digits are dropped
(re.sub(r"(?<=\\d),(?=\\d)", "", text)), then the last match of r"-?\\d+(?:\\.\\d+)?" is the answer;
1.0 if it equals float(answer), else 0.0 (0.0 when there is no number). The reward does not change the
work done (trl always computes the loss over every completion, even when all advantages are 0).

Generation, as trl 1.16 does it here (_generate_single_turn): the G copies of each prompt are tokenized
with the chat template and left-padded with the tokenizer's pad token (SmolLM2: <|im_end|>, which is
also its EOS) to the longest prompt of the batch (pad_to_multiple_of "auto" means none on CPU); then one
unwrapped_model.generate(input_ids, attention_mask) call for all prompts_per_step * G rows, with
do_sample True, max_new_tokens max_completion_length, eos_token_id the model's generation_config EOS ids
plus the tokenizer's, and the transformers default use_cache True (a dynamic KV cache). It generates
with the PEFT model (the adapter applied as unmerged LoRA branches, not merged weights), with gradient
checkpointing switched off for the call, under torch.no_grad(). Rows that have finished keep being
computed (padded with pad tokens) until every row has finished or hit max_new_tokens. The completion is
everything up to and including the first EOS; the batch is right-padded to the longest completion for
the training forward. With --fixed-length, generation_kwargs {"min_new_tokens": max_completion_length}
masks EOS until max_completion_length tokens, so every completion has exactly that many tokens (the
lengths Temper's fixed-length mode produces); the reported mean completion length says what happened
either way (it counts the EOS token when one was sampled, as trl's completion mask does).

Training forward: trl patches the base model with its fused LM head (log-probs and entropy of the
completion tokens, in tiles, without materialising the full logits; entropy is always computed because
it feeds trl's entropy metric), runs model(prompt + completion ids, attention mask) with use_cache off,
and backpropagates the dapo loss into the LoRA weights only.

Defaults on CPU: trl's own, i.e. bf16 autocast (GRPOConfig's bf16 defaults to True when fp16 is unset;
accelerate then runs the training forward under torch.autocast("cpu", bfloat16) while the weights stay
float32) and gradient checkpointing (GRPOConfig defaults it to True; transformers 5 checkpoints
non-reentrantly). With --fp32 both are turned off, for a like-for-like float32 comparison. The JSON
reports what generation actually ran under (autocast on or off, train mode, whether decode steps fed one
token at a time, i.e. used the KV cache), observed by a forward pre-hook during the generate call.

Timing (wall clock, perf_counter), per optimizer step, from the end of step 1 (an untimed warm-up) on:
  step: between consecutive TrainerCallback.on_step_end calls (after the optimizer step), like the
        DPO peer; it includes the trainer's dataloader fetch and bookkeeping.
  generation: the _generate_single_turn call: padding the prompt ids, generate, cutting at EOS.
  scoring: the rest of _generate_and_score_completions: chat-template tokenization, decoding,
           the reward, advantages, building the padded training batch.
  training: step - generation - scoring: the loss forward, backward, gradient clipping, AdamW step,
            zero_grad and the trainer's own overhead; forward_backward is the part inside
            training_step (compute_loss + backward), so training - forward_backward is the optimizer
            step plus overhead.
With STEPS 1 there is nothing after the warm-up, so that step is timed instead.
peak_rss_mb is the process's peak resident set (VmHWM), as the other peers measure it.

Prints one JSON line on stdout: {"steps", "step_seconds", "generation_seconds", "scoring_seconds",
"training_seconds", "forward_backward_seconds" (means over the timed steps), "seconds" (their total),
"completion_tokens_per_step", "mean_completion_length", "prompt_tokens_per_step",
"completions_per_step", "per_step" (each timed step's split), "mean_reward", "peak_rss_mb", "trl",
"transformers", "torch", "bf16", "gradient_checkpointing", "fixed_length", "generation" (what the
generate call ran under, and the process's peak RSS right after the first generate, before any
training forward), "settings"}; everything else goes to stderr.
"""
import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402

from resident_memory import peak_rss_mb  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")


def completion_text(completion):
    """A completion as trl hands it to reward functions: a string, or [{"role", "content"}] for chat data."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion)


def last_number(text):
    matches = NUMBER.findall(DIGIT_COMMA.sub("", text))
    return float(matches[-1]) if matches else None


def math_reward(completions, answer, **kwargs):
    """1.0 when the completion's last number equals the answer, else 0.0 (see the docstring)."""
    rewards = []
    for completion, expected in zip(completions, answer):
        value = last_number(completion_text(completion))
        rewards.append(1.0 if value is not None and value == float(expected) else 0.0)
    return rewards


class Split:
    """Seconds and sizes accumulated for the optimizer step under way."""

    def __init__(self):
        self.generation = 0.0
        self.rollout = 0.0
        self.forward_backward = 0.0
        self.completion_tokens = 0
        self.completions = 0
        self.prompt_tokens = 0
        self.rewards = []


class TimedGRPOTrainer(trl.GRPOTrainer):
    """GRPOTrainer that times its generate call, its whole rollout and its training_step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.split = Split()

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        start = time.perf_counter()
        completion_ids, logprobs = super()._generate_single_turn(
            prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        self.split.generation += time.perf_counter() - start
        self.split.completion_tokens += sum(len(ids) for ids in completion_ids)
        self.split.completions += len(completion_ids)
        self.split.prompt_tokens += sum(len(ids) for ids in prompt_ids)
        return completion_ids, logprobs

    def _generate_and_score_completions(self, inputs):
        start = time.perf_counter()
        output = super()._generate_and_score_completions(inputs)
        self.split.rollout += time.perf_counter() - start
        return output

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.split.rewards.extend(rewards[:, 0].tolist())
        return rewards

    def training_step(self, model, inputs, num_items_in_batch):
        rollout_before = self.split.rollout
        start = time.perf_counter()
        output = super().training_step(model, inputs, num_items_in_batch)
        # training_step generates first (_prepare_inputs); what is left is the loss forward and backward.
        self.split.forward_backward += time.perf_counter() - start - (self.split.rollout - rollout_before)
        return output


class StepClock(TrainerCallback):
    """Wall clock at the start of training and at the end of every optimizer step, with that step's split."""

    def __init__(self):
        self.trainer = None
        self.begin = None
        self.ends = []
        self.splits = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())
        split = self.trainer.split
        self.splits.append(split)
        self.trainer.split = Split()
        step = self.ends[-1] - (self.ends[-2] if len(self.ends) > 1 else self.begin)
        print(f"step {state.global_step}: {step:.2f} s, generation {split.generation:.2f} s, "
              f"scoring {split.rollout - split.generation:.2f} s, forward+backward {split.forward_backward:.2f} s, "
              f"{split.completion_tokens} completion tokens", file=sys.stderr, flush=True)


class GenerationProbe:
    """Forward pre-hooks that note what the generate call runs under: autocast, train mode, and the
    input length of the model's forward calls (1 after the first call means decode steps use the cache)."""

    def __init__(self, model, lora_linear):
        self.active = False
        self.calls = 0
        self.lengths = []
        self.autocast = None
        self.training = None
        self.activation_dtype = None
        self.peak_rss_mb = None
        model.register_forward_pre_hook(self.on_model, with_kwargs=True)
        lora_linear.register_forward_pre_hook(self.on_linear)

    def on_model(self, module, args, kwargs):
        if self.active:
            self.calls += 1
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is not None and len(self.lengths) < 4:
                self.lengths.append(int(ids.shape[-1]))

    def on_linear(self, module, args):
        if self.active and self.autocast is None:
            self.autocast = torch.is_autocast_enabled("cpu")
            self.training = module.training
            self.activation_dtype = str(args[0].dtype).replace("torch.", "")

    @contextlib.contextmanager
    def watching(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def report(self):
        return {"autocast": self.autocast, "train_mode": self.training, "activation_dtype": self.activation_dtype,
                "forward_calls_first_step": self.calls, "first_input_lengths": self.lengths,
                "uses_kv_cache": len(self.lengths) > 1 and all(n == 1 for n in self.lengths[1:]),
                "peak_rss_mb_after_first_generation": self.peak_rss_mb}


def parse_arguments():
    parser = argparse.ArgumentParser(description="trl GRPOTrainer peer of `temper bench grpo` (see the docstring)")
    parser.add_argument("model_dir")
    parser.add_argument("prompts")
    parser.add_argument("steps", type=int)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--prompts-per-step", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--fixed-length", action="store_true",
                        help="min_new_tokens = max_completion_length: every completion has exactly that many tokens")
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--fp32", action="store_true", help="turn off bf16 autocast and gradient checkpointing")
    return parser.parse_args()


def main():
    # trainer.train() prints its summary (and any log) on stdout; only the JSON line may go there.
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = run(parse_arguments())
    print(json.dumps(result), file=stdout)


def run(options):
    group = options.num_generations
    batch = options.prompts_per_step * group
    with open(options.prompts, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    records = [{"prompt": r["prompt"], "answer": str(r["answer"])} for r in records]
    if len(records) < options.prompts_per_step:
        raise SystemExit(f"{options.prompts} has {len(records)} prompts, fewer than --prompts-per-step")
    transformers.set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(options.model_dir)
    model = AutoModelForCausalLM.from_pretrained(options.model_dir, dtype=torch.float32)
    generation_kwargs = {"min_new_tokens": options.max_completion_length} if options.fixed_length else None
    config = trl.GRPOConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, gradient_accumulation_steps=1,
        steps_per_generation=1, num_generations=group, max_completion_length=options.max_completion_length,
        max_steps=options.steps, learning_rate=options.learning_rate, beta=0.0, loss_type="dapo", temperature=1.0,
        generation_kwargs=generation_kwargs, logging_steps=10_000, save_strategy="no", report_to="none",
        use_cpu=True, dataloader_num_workers=0, seed=0,
        **({"bf16": False, "gradient_checkpointing": False} if options.fp32 else {}))
    lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=options.lora_dropout, target_modules=TARGETS,
                           task_type="CAUSAL_LM")
    clock = StepClock()
    trainer = TimedGRPOTrainer(model=model, reward_funcs=[math_reward], args=config,
                               train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                               peft_config=lora, callbacks=[clock])
    clock.trainer = trainer
    base = trainer.model.get_base_model()
    probe = GenerationProbe(base, base.model.layers[0].self_attn.q_proj)
    original_generate = trainer._generate_single_turn
    first = {"done": False}

    def probed_generate(*args, **kwargs):
        if first["done"]:
            return original_generate(*args, **kwargs)
        first["done"] = True
        with probe.watching():
            output = original_generate(*args, **kwargs)
        probe.peak_rss_mb = peak_rss_mb()
        return output

    trainer._generate_single_turn = probed_generate
    print(f"bf16={config.bf16} gradient_checkpointing={config.gradient_checkpointing} "
          f"gradient_checkpointing_kwargs={config.gradient_checkpointing_kwargs} "
          f"mixed_precision={trainer.accelerator.mixed_precision} threads={torch.get_num_threads()} "
          f"prompts={len(records)} batch={batch} generation_batch_size={config.generation_batch_size} "
          f"steps_per_generation={config.steps_per_generation} generation_config={trainer.generation_config}",
          file=sys.stderr)
    trainer.train()

    marks = [clock.begin] + clock.ends
    steps = [{"step": b - a, "split": s} for a, b, s in zip(marks, marks[1:], clock.splits)]
    timed = steps[1:] if len(steps) > 1 else steps
    per_step = []
    for entry in timed:
        s = entry["split"]
        scoring = s.rollout - s.generation
        per_step.append({
            "step_seconds": entry["step"], "generation_seconds": s.generation, "scoring_seconds": scoring,
            "training_seconds": entry["step"] - s.rollout, "forward_backward_seconds": s.forward_backward,
            "completion_tokens": s.completion_tokens, "completions": s.completions,
            "prompt_tokens": s.prompt_tokens,
            "mean_reward": sum(s.rewards) / len(s.rewards) if s.rewards else 0.0})

    def mean(key):
        return sum(p[key] for p in per_step) / len(per_step)

    completion_tokens = mean("completion_tokens")
    completions = mean("completions")
    for index, p in enumerate(per_step):
        print(f"timed step {index + 1}: " + " ".join(f"{k}={v:.4g}" for k, v in p.items()), file=sys.stderr)
    return {
        "steps": len(per_step), "step_seconds": mean("step_seconds"),
        "generation_seconds": mean("generation_seconds"), "scoring_seconds": mean("scoring_seconds"),
        "training_seconds": mean("training_seconds"), "forward_backward_seconds": mean("forward_backward_seconds"),
        "seconds": sum(p["step_seconds"] for p in per_step),
        "completion_tokens_per_step": completion_tokens,
        "mean_completion_length": completion_tokens / completions if completions else 0.0,
        "prompt_tokens_per_step": mean("prompt_tokens"), "completions_per_step": completions,
        "mean_reward": mean("mean_reward"), "per_step": per_step,
        "peak_rss_mb": peak_rss_mb(),
        "trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
        "bf16": bool(config.bf16), "gradient_checkpointing": bool(config.gradient_checkpointing),
        "fixed_length": options.fixed_length, "generation": probe.report(),
        "settings": {"num_generations": group, "prompts_per_step": options.prompts_per_step,
                     "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1,
                     "steps_per_generation": config.steps_per_generation,
                     "max_completion_length": options.max_completion_length, "loss_type": config.loss_type,
                     "beta": config.beta, "temperature": config.temperature, "learning_rate": config.learning_rate,
                     "lora": {"r": 16, "alpha": 32, "dropout": options.lora_dropout, "targets": TARGETS},
                     "disable_dropout": config.disable_dropout, "threads": torch.get_num_threads()},
    }


if __name__ == "__main__":
    main()
