#!/usr/bin/env python3
"""A bounded load test of a running `temper serve` on loopback, with the official OpenAI client.

    python load_test.py --base-url http://127.0.0.1:PORT/v1 --model NAME [--requests 64] [--disconnects 8]

Sends `--requests` streamed chat requests at once, of mixed prompt lengths and max_tokens, and
`--disconnects` more that close their stream after two content chunks. Afterwards it reads
/metrics until the server reports no running sequence and no KV block in use. Prints one JSON
object: errors, incomplete streams, the disconnects, the final gauges, and `ok`.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.request

import openai

TOPICS = ["rivers", "the moon", "bread", "bicycles", "libraries", "winter", "bees", "trains"]


def prompt(index):
    # Mixed lengths: 1 to 8 repetitions of a sentence in the user turn.
    topic = TOPICS[index % len(TOPICS)]
    context = " ".join(["Here is some background that matters little."] * (1 + index % 8))
    return [{"role": "user", "content": f"{context} Write two sentences about {topic}."}]


async def complete(client, model, index):
    started = time.monotonic()
    first = None
    pieces, finish = [], []
    stream = await client.chat.completions.create(
        model=model, messages=prompt(index), max_tokens=8 + (index * 7) % 57, temperature=0.7, seed=index,
        stream=True, stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                if first is None:
                    first = time.monotonic() - started
                pieces.append(choice.delta.content)
            if choice.finish_reason is not None:
                finish.append(choice.finish_reason)
    complete = len(finish) == 1 and usage is not None and usage.completion_tokens > 0
    return {"complete": complete, "finish": finish[:1], "ttft": first, "seconds": time.monotonic() - started}


async def disconnect(client, model, index):
    stream = await client.chat.completions.create(
        model=model, messages=prompt(index), max_tokens=400, temperature=0.7, seed=index, stream=True
    )
    seen = 0
    async for chunk in stream:
        if any(choice.delta.content for choice in chunk.choices):
            seen += 1
        if seen == 2:
            break
    await stream.close()
    return seen


def gauges(base_url):
    root = base_url.rsplit("/v1", 1)[0]
    text = urllib.request.urlopen(root + "/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            values[name] = float(value)
    return values


async def main_async(args):
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key, timeout=600, max_retries=0)
    started = time.monotonic()
    tasks = [complete(client, args.model, index) for index in range(args.requests)]
    tasks += [disconnect(client, args.model, 1000 + index) for index in range(args.disconnects)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    completions, disconnects = results[: args.requests], results[args.requests :]
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    incomplete = sum(1 for r in completions if not isinstance(r, BaseException) and not r["complete"])
    # The server frees a disconnected stream's slot at its next step: wait for the gauges to settle.
    final = {}
    for _ in range(100):
        final = gauges(args.base_url)
        if final.get("temper_requests_running") == 0 and final.get("temper_kv_blocks_used") == 0:
            break
        time.sleep(0.1)
    ttfts = sorted(r["ttft"] for r in completions if not isinstance(r, BaseException) and r["ttft"] is not None)
    return {
        "requests": args.requests,
        "disconnects": args.disconnects,
        "errors": errors,
        "incomplete": incomplete,
        "disconnected_after_chunks": [r for r in disconnects if not isinstance(r, BaseException)],
        "seconds": round(elapsed, 2),
        "ttft_p50": ttfts[len(ttfts) // 2] if ttfts else None,
        "ttft_max": ttfts[-1] if ttfts else None,
        "final": {k: final.get(k) for k in ("temper_requests_running", "temper_requests_waiting", "temper_kv_blocks_used", "temper_requests_cancelled_total")},
        "ok": not errors and incomplete == 0 and final.get("temper_kv_blocks_used") == 0
        and final.get("temper_requests_running") == 0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--disconnects", type=int, default=8)
    parser.add_argument("--api-key", default="none")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
