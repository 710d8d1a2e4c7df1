#!/usr/bin/env python3
"""Client side of `temper bench serve`: sends every request of a JSON file at once to an
OpenAI-compatible server, streamed, and prints one JSON line: wall seconds, completion tokens,
and each request's time to first token.

    python serve_client.py --base-url http://127.0.0.1:PORT/v1 --model NAME --requests FILE
"""
import argparse
import asyncio
import json
import time

import openai


async def one(client, model, request, started):
    first = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model, messages=request["messages"], max_tokens=request["max_tokens"], temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        if first is None and any(choice.delta.content for choice in chunk.choices):
            first = time.perf_counter() - started
    return first, tokens


async def main_async(args):
    requests = json.load(open(args.requests))
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="none", timeout=3600, max_retries=0)
    started = time.perf_counter()
    results = await asyncio.gather(*(one(client, args.model, request, started) for request in requests))
    wall = time.perf_counter() - started
    return {"wall_seconds": wall, "completion_tokens": sum(tokens for _, tokens in results),
            "ttft": [first for first, _ in results]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
