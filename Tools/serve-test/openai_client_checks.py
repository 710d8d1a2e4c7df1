#!/usr/bin/env python3
"""Drives a running `temper serve` with the official OpenAI Python client and prints one JSON object.

    python openai_client_checks.py --base-url http://127.0.0.1:PORT/v1 --model NAME [--adapter-name NAME]
                                   [--api-key KEY]

Each check records what it saw (texts, finish reasons, usage, log-prob shapes) and `ok`; a check that
raised records `error` instead. The Swift end-to-end test asserts on the printed object; the exit
status is 0 when every check is ok, 1 otherwise. Requests are greedy (temperature 0) where a result
is compared with another, so the comparisons are deterministic.
"""

import argparse
import json
import sys
import time
import traceback

import openai

PROMPT = [{"role": "user", "content": "Say hello in five words."}]
COMPLETION_PROMPT = "The capital of France is"
MAX_TOKENS = 8


def usage_dict(usage):
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def usage_ok(usage):
    return (
        usage is not None
        and usage["prompt_tokens"] > 0
        and usage["completion_tokens"] > 0
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )


def check_models(client, args):
    ids = [model.id for model in client.models.list().data]
    expected = [args.model] + ([args.adapter_name] if args.adapter_name else [])
    return {"ids": ids, "ok": all(name in ids for name in expected)}


def check_chat(client, args):
    response = client.chat.completions.create(
        model=args.model, messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0
    )
    choice = response.choices[0]
    usage = usage_dict(response.usage)
    return {
        "object": response.object,
        "id": response.id,
        "text": choice.message.content,
        "role": choice.message.role,
        "finish_reason": choice.finish_reason,
        "usage": usage,
        "ok": response.object == "chat.completion"
        and choice.message.role == "assistant"
        and isinstance(choice.message.content, str)
        and choice.finish_reason in ("stop", "length")
        and usage_ok(usage)
        and usage["completion_tokens"] <= MAX_TOKENS,
    }


def check_chat_stream(client, args, reference_text):
    stream = client.chat.completions.create(
        model=args.model,
        messages=PROMPT,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = 0
    roles = []
    deltas = []
    finish_reasons = []
    usage = None
    usage_chunk_has_no_choices = None
    objects = set()
    ids = set()
    for chunk in stream:
        chunks += 1
        objects.add(chunk.object)
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = usage_dict(chunk.usage)
            usage_chunk_has_no_choices = len(chunk.choices) == 0
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                deltas.append(choice.delta.content)
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)
    text = "".join(deltas)
    return {
        "chunks": chunks,
        "objects": sorted(objects),
        "one_id": len(ids) == 1,
        "roles": roles,
        "deltas": deltas,
        "text": text,
        "finish_reasons": finish_reasons,
        "usage": usage,
        "usage_chunk_has_no_choices": usage_chunk_has_no_choices,
        "matches_non_stream": text == reference_text,
        "ok": objects == {"chat.completion.chunk"}
        and len(ids) == 1
        and roles[:1] == ["assistant"]
        and len(finish_reasons) == 1
        and finish_reasons[0] in ("stop", "length")
        and usage_ok(usage)
        and usage_chunk_has_no_choices is True
        and text == reference_text,
    }


def check_chat_n2(client, args):
    response = client.chat.completions.create(
        model=args.model, messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0.8, seed=1, n=2
    )
    indices = sorted(choice.index for choice in response.choices)
    return {
        "indices": indices,
        "texts": [choice.message.content for choice in response.choices],
        "finish_reasons": [choice.finish_reason for choice in response.choices],
        "usage": usage_dict(response.usage),
        "ok": indices == [0, 1]
        and all(choice.finish_reason in ("stop", "length") for choice in response.choices)
        and usage_ok(usage_dict(response.usage)),
    }


def check_chat_logprobs(client, args):
    response = client.chat.completions.create(
        model=args.model,
        messages=PROMPT,
        max_tokens=5,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    choice = response.choices[0]
    content = choice.logprobs.content if choice.logprobs else None
    entries = [
        {
            "token": entry.token,
            "logprob": entry.logprob,
            "bytes": entry.bytes,
            "top": [(top.token, top.logprob) for top in entry.top_logprobs],
        }
        for entry in (content or [])
    ]
    # Greedy decoding picks the most likely raw token, which is the first alternative.
    chosen_is_top = all(entry["top"] and entry["top"][0][0] == entry["token"] for entry in entries)
    well_formed = all(
        entry["logprob"] <= 0
        and isinstance(entry["bytes"], list)
        and len(entry["top"]) == 3
        and all(entry["top"][i][1] >= entry["top"][i + 1][1] for i in range(2))
        for entry in entries
    )
    joined = "".join(entry["token"] for entry in entries)
    return {
        "entries": entries,
        "text": choice.message.content,
        "tokens_match_text": joined == choice.message.content,
        "chosen_is_top": chosen_is_top,
        "ok": len(entries) > 0 and well_formed and chosen_is_top,
    }


def check_capital(client, args):
    """transformers' greedy answer on the real SmolLM2 (Tests/Fixtures/smollm2: 8 tokens, EOS last)."""
    response = client.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0, logprobs=True,
    )
    choice = response.choices[0]
    tokens = [entry.token for entry in (choice.logprobs.content if choice.logprobs else [])]
    return {
        "text": choice.message.content,
        "finish_reason": choice.finish_reason,
        "completion_tokens": response.usage.completion_tokens,
        "logprob_tokens": tokens,
        "ok": choice.finish_reason == "stop",
    }


def check_completions(client, args):
    response = client.completions.create(
        model=args.model, prompt=COMPLETION_PROMPT, max_tokens=MAX_TOKENS, temperature=0, logprobs=2
    )
    choice = response.choices[0]
    logprobs = choice.logprobs
    usage = usage_dict(response.usage)
    tokens = logprobs.tokens if logprobs else []
    return {
        "object": response.object,
        "text": choice.text,
        "finish_reason": choice.finish_reason,
        "usage": usage,
        "logprob_tokens": tokens,
        "ok": response.object == "text_completion"
        and isinstance(choice.text, str)
        and choice.finish_reason in ("stop", "length")
        and usage_ok(usage)
        and logprobs is not None
        and len(logprobs.token_logprobs) == len(tokens) == len(logprobs.text_offset) == len(logprobs.top_logprobs)
        and all(len(top) >= 2 for top in logprobs.top_logprobs),
    }


def check_completions_stream(client, args, reference_text):
    stream = client.completions.create(
        model=args.model, prompt=COMPLETION_PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True
    )
    pieces = []
    finish_reasons = []
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.text)
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)
    text = "".join(pieces)
    return {
        "text": text,
        "finish_reasons": finish_reasons,
        "matches_non_stream": text == reference_text,
        "ok": len(finish_reasons) == 1 and text == reference_text,
    }


def check_adapter(client, args):
    response = client.chat.completions.create(
        model=args.adapter_name, messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0
    )
    choice = response.choices[0]
    return {
        "model": response.model,
        "text": choice.message.content,
        "finish_reason": choice.finish_reason,
        "ok": response.model == args.adapter_name and choice.finish_reason in ("stop", "length"),
    }


def check_errors(client, args):
    seen = {}
    try:
        client.chat.completions.create(model="no-such-model", messages=PROMPT, max_tokens=2)
        seen["unknown_model"] = None
    except openai.NotFoundError as error:
        seen["unknown_model"] = {"status": error.status_code, "code": error.code}
    try:
        client.chat.completions.create(model=args.model, messages=PROMPT, max_tokens=2, temperature=5)
        seen["bad_temperature"] = None
    except openai.BadRequestError as error:
        seen["bad_temperature"] = {"status": error.status_code, "code": error.code, "param": error.param}
    return {
        **seen,
        "ok": seen.get("unknown_model", {}) is not None
        and seen["unknown_model"]["status"] == 404
        and seen.get("bad_temperature") is not None
        and seen["bad_temperature"]["status"] == 400
        and seen["bad_temperature"]["param"] == "temperature",
    }


def run(name, results, check, *extra):
    started = time.monotonic()
    try:
        results[name] = check(*extra)
    except Exception as error:  # a failed check is a result, not a crash
        results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    results[name]["seconds"] = round(time.monotonic() - started, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", required=True, help="the served base model's name")
    parser.add_argument("--adapter-name", help="an adapter served under this name (skipped if absent)")
    parser.add_argument("--api-key", default="none", help="sent as the bearer token")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request")
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=args.timeout, max_retries=0)
    results = {}
    run("models", results, check_models, client, args)
    run("chat", results, check_chat, client, args)
    run("chat_stream", results, check_chat_stream, client, args, results["chat"].get("text"))
    run("chat_n2", results, check_chat_n2, client, args)
    run("chat_logprobs", results, check_chat_logprobs, client, args)
    run("capital", results, check_capital, client, args)
    run("completions", results, check_completions, client, args)
    run("completions_stream", results, check_completions_stream, client, args, results["completions"].get("text"))
    if args.adapter_name:
        run("adapter", results, check_adapter, client, args)
    run("errors", results, check_errors, client, args)

    ok = all(result["ok"] for result in results.values())
    print(json.dumps({"openai_version": openai.__version__, "ok": ok, "checks": results}, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
