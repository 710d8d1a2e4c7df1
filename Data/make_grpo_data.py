"""Writes the GRPO prompt datasets (deterministic) from reasoning-gym's `gsm_symbolic` generator:

  Data/grpo-arithmetic-train.jsonl    400 GSM8K-style word problems (seed 1000)
  Data/grpo-arithmetic-heldout.jsonl  100 more, from another seed (50000), none of them in the train file
  Data/grpo-format.jsonl               60 short problems (seed 90000) asking for <think>...</think><answer>...</answer>

Each line is a TRL conversational prompt plus the fields the reward functions need:
  arithmetic: {"prompt": [{"role": "user", "content": <question + \\boxed{} instruction>}], "answer": "<integer>"}
  format:     {"prompt": [...], "answer": "<integer>", "tags": ["think", "answer"], "format_regex": "<regex>"}

reasoning-gym (Apache-2.0) is pinned in Tools/fixtures/requirements-data.txt. Run from the repository root:
  python=$(Tools/make-venv.sh .venv-data Tools/fixtures/requirements-data.txt)
  $python Data/make_grpo_data.py
It prints the counts; running it twice gives identical files. Data/README-grpo.md describes the data.
"""
import importlib.metadata
import json
import pathlib
import re

import reasoning_gym

VERSION = "0.1.25"
GENERATOR = "gsm_symbolic"
TRAIN_SEED, HELDOUT_SEED, FORMAT_SEED = 1000, 50000, 90000
TRAIN_COUNT, HELDOUT_COUNT, FORMAT_COUNT = 400, 100, 60
POOL = 5000  # virtual size of each reasoning-gym dataset; item i is generated from Random(seed + i)
MAX_ANSWER = 1_000_000
FORMAT_MAX_CHARS = 240  # the format set uses short problems: the point there is the output format
GSM_SUFFIX = " Give the result as your final answer. Do not include units."
BOXED = " Reason step by step, then give the final answer as a plain number (no units) in \\boxed{}."
FORMAT_INSTRUCTIONS = [
    " First think it through inside <think> </think> tags, then write only the final number inside "
    "<answer> </answer> tags.",
    " Put your reasoning between <think> and </think>, then the final number alone between <answer> and "
    "</answer>.",
    " Answer in this format: <think> your reasoning </think> <answer> the final number </answer>.",
    " Show your working inside <think></think> and give just the number, without units, inside "
    "<answer></answer>.",
]
FORMAT_REGEX = r"^\s*<think>[\s\S]*?</think>\s*<answer>[\s\S]*?</answer>\s*$"
ROOT = pathlib.Path(__file__).resolve().parent


def clean_answer(answer):
    """Positive integers up to a million, written without sign, separators, decimals or leading zeros."""
    return re.fullmatch(r"[1-9]\d*", answer) is not None and int(answer) <= MAX_ANSWER


def problems(seed, exclude, count, max_chars=None):
    """The first `count` items of gsm_symbolic(seed) with a clean answer, not in `exclude`, without repeats."""
    dataset = reasoning_gym.create_dataset(GENERATOR, seed=seed, size=POOL)
    out, seen = [], set(exclude)
    for i in range(POOL):
        item = dataset[i]
        question, answer = item["question"], item["answer"].strip()
        assert question.endswith(GSM_SUFFIX), question
        question = question[: -len(GSM_SUFFIX)].strip()
        if not clean_answer(answer) or question in seen:
            continue
        if max_chars is not None and len(question) > max_chars:
            continue
        seen.add(question)
        out.append((question, answer))
        if len(out) == count:
            return out
    raise RuntimeError(f"only {len(out)} usable problems for seed {seed}")


def user(content):
    return [{"role": "user", "content": content}]


def write(name, rows):
    path = ROOT / name
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def main():
    # (reasoning_gym.__version__ still says 0.1.19 in the 0.1.25 release; the installed distribution is what counts)
    installed = importlib.metadata.version("reasoning-gym")
    assert installed == VERSION, installed
    train = problems(TRAIN_SEED, (), TRAIN_COUNT)
    heldout = problems(HELDOUT_SEED, {q for q, _ in train}, HELDOUT_COUNT)
    fmt = problems(FORMAT_SEED, {q for q, _ in train + heldout}, FORMAT_COUNT, FORMAT_MAX_CHARS)
    assert not {q for q, _ in train} & {q for q, _ in heldout}
    write("grpo-arithmetic-train.jsonl", [{"prompt": user(q + BOXED), "answer": a} for q, a in train])
    write("grpo-arithmetic-heldout.jsonl", [{"prompt": user(q + BOXED), "answer": a} for q, a in heldout])
    write("grpo-format.jsonl", [
        {"prompt": user(q + FORMAT_INSTRUCTIONS[i % len(FORMAT_INSTRUCTIONS)]), "answer": a,
         "tags": ["think", "answer"], "format_regex": FORMAT_REGEX}
        for i, (q, a) in enumerate(fmt)])
    good = "<think>12 + 30 = 42</think>\n<answer>42</answer>"
    assert re.match(FORMAT_REGEX, good) and not re.match(FORMAT_REGEX, "The answer is 42.")
    for name, rows in (("train", train), ("heldout", heldout), ("format", fmt)):
        chars = sum(len(q) for q, _ in rows) / len(rows)
        print(f"{name}: {len(rows)} problems, mean question {chars:.0f} chars, "
              f"answers {min(int(a) for _, a in rows)}..{max(int(a) for _, a in rows)}")


if __name__ == "__main__":
    main()
