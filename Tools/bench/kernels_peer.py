"""PyTorch side of `temper bench kernels`: reads one case per line on stdin, answers one JSON line.

A case is JSON: {"op": "silu", "shape": [1024, 1536], "backward": false, "repeats": 5}, with "eps"
for rms_norm and "ropeTheta" for rope.
The answer is {"seconds": [...]} for `repeats` timed runs after one warm-up run.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

OPS = {
    "exp": lambda x: torch.exp(x[0]),
    "log": lambda x: torch.log(x[0].abs() + 0.01),
    "sigmoid": lambda x: torch.sigmoid(x[0]),
    "silu": lambda x: F.silu(x[0]),
    "gelu": lambda x: F.gelu(x[0]),
    "gelu_tanh": lambda x: F.gelu(x[0], approximate="tanh"),
    "tanh": lambda x: torch.tanh(x[0]),
    "softplus": lambda x: F.softplus(x[0]),
    "swiglu": lambda x: F.silu(x[0]) * x[1],
    "softmax": lambda x: torch.softmax(x[0], dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x[0], dim=-1),
    "logsumexp": lambda x: torch.logsumexp(x[0], dim=-1),
}
ARITY = {"swiglu": 2}


def linear_cross_entropy_case(shape, generator):
    """Hidden states [N, D] and an LM-head weight [V, D] (both differentiable), fixed targets."""
    n, d, v = shape
    hidden = torch.randn((n, d), generator=generator)
    weight = torch.randn((v, d), generator=generator) * 0.02
    targets = torch.randint(0, v, (n,), generator=generator)
    return [hidden, weight], lambda x: F.cross_entropy(x[0] @ x[1].T, targets)


def measure_adamw(case):
    """torch.optim.AdamW with fused=True, its fastest CPU implementation, on k tensors; each step
    updates the parameters and moments in place (the Swift side times the same steady state)."""
    k, rows, cols = case["shape"]
    generator = torch.Generator().manual_seed(0)
    parameters = [torch.nn.Parameter(torch.randn((rows, cols), generator=generator)) for _ in range(k)]
    for p in parameters:
        p.grad = torch.randn((rows, cols), generator=generator)
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=0.01, fused=True)
    optimizer.step()
    seconds = []
    for _ in range(case["repeats"]):
        start = time.perf_counter()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds}


def attention_case(shape, generator):
    """Causal grouped-query attention q [B, H, T, Dh], k and v [B, Hkv, T, Dh]."""
    b, h, hkv, t, dh = shape
    inputs = [torch.randn((b, h, t, dh), generator=generator), torch.randn((b, hkv, t, dh), generator=generator),
              torch.randn((b, hkv, t, dh), generator=generator)]
    return inputs, lambda x: F.scaled_dot_product_attention(x[0], x[1], x[2], is_causal=True, enable_gqa=True)


def rms_norm_case(case, generator):
    """x [N, D] and weight [D]: transformers' LlamaRMSNorm in float32, x * rsqrt(mean(x^2) + eps) * w."""
    n, d = case["shape"]
    eps = case["eps"]
    inputs = [torch.randn((n, d), generator=generator), 1 + 0.1 * torch.randn((d,), generator=generator)]
    return inputs, lambda x: x[0] * torch.rsqrt(x[0].pow(2).mean(-1, keepdim=True) + eps) * x[1]


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_case(case, generator):
    """Queries [B, T, H, Dh] and keys [B, T, Hkv, Dh] as the projections give them, rotated as
    transformers' Llama/Qwen do: cos/sin of positions 0..<T computed once for both, then
    x * cos + rotate_half(x) * sin on the [B, heads, T, Dh] views."""
    b, h, hkv, t, dh = case["shape"]
    inputs = [torch.randn((b, t, h, dh), generator=generator), torch.randn((b, t, hkv, dh), generator=generator)]
    inverse_frequencies = 1.0 / (case["ropeTheta"] ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    positions = torch.arange(t)[None]

    def op(x):
        frequencies = positions[..., None].float() * inverse_frequencies  # [1, T, Dh/2]
        angles = torch.cat((frequencies, frequencies), dim=-1)
        cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # [1, 1, T, Dh]
        return tuple(heads * cos + rotate_half(heads) * sin for heads in (v.transpose(1, 2) for v in x))

    return inputs, op


def measure(case):
    if case["op"] == "adamw":
        return measure_adamw(case)
    generator = torch.Generator().manual_seed(0)
    if case["op"] == "attention":
        inputs, op = attention_case(case["shape"], generator)
    elif case["op"] == "linear_cross_entropy":
        inputs, op = linear_cross_entropy_case(case["shape"], generator)
    elif case["op"] == "rms_norm":
        inputs, op = rms_norm_case(case, generator)
    elif case["op"] == "rope":
        inputs, op = rope_case(case, generator)
    else:
        op = OPS[case["op"]]
        inputs = [torch.randn(case["shape"], generator=generator) for _ in range(ARITY.get(case["op"], 1))]
    backward = case["backward"]
    if backward:
        for tensor in inputs:
            tensor.requires_grad_(True)
    cotangent = None

    def run():
        nonlocal cotangent
        for tensor in inputs:
            tensor.grad = None
        if backward:
            out = op(inputs)
            outs = out if isinstance(out, tuple) else (out,)
            if cotangent is None:
                cotangent = [torch.randn(o.shape, generator=generator) for o in outs]
            torch.autograd.backward(outs, cotangent)
        else:
            with torch.no_grad():
                op(inputs)

    run()
    seconds = []
    for _ in range(case["repeats"]):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds}


def main():
    torch.manual_seed(0)
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        print(json.dumps(measure(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
