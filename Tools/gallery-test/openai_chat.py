"""One greedy chat completion through the `openai` client against a deployment; prints the answer.

Usage: openai_chat.py BASE_URL MODEL PROMPT MAX_TOKENS
"""
import sys

from openai import OpenAI

base_url, model, prompt, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = OpenAI(base_url=base_url, api_key="unused-on-loopback")
reply = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0)
print(reply.choices[0].message.content)
