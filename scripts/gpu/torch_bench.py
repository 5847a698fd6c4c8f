#!/usr/bin/env python3
"""The PyTorch baseline for `roundhouse bench cuda`, on the same GPU: torch.matmul TFLOP/s (fp32 and
bf16) at the same shapes, and a plain PyTorch MoE layer (router, softmax, top-k, softmax over the
kept logits, a GELU FFN per expert over its tokens, gate-weighted sum) forward + backward in fp32.
Usage: torch_bench.py OUT.json [D E K F BATCH]"""
import json
import sys
import time

import torch
import torch.nn.functional as F

out = sys.argv[1]
D, E, K, FH, BATCH = (int(v) for v in (sys.argv[2:7] if len(sys.argv) > 6 else (192, 8, 2, 384, 256)))
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False
rows = max(1, BATCH * K // E)
report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "gemm": [], "moeLayer": []}


def timed(fn, seconds=1.0):
    fn()
    torch.cuda.synchronize()
    trials = []
    for _ in range(5):
        start = time.perf_counter()
        iters = 0
        while time.perf_counter() - start < seconds / 5:
            fn()
            iters += 1
        torch.cuda.synchronize()
        trials.append((time.perf_counter() - start) / iters)
    return sorted(trials)[2]


for m, k, n in [(4096, 4096, 4096), (rows, D, FH), (rows, FH, D), (4096, D, FH), (4096, FH, D)]:
    row = {"m": m, "k": k, "n": n}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(m, k, device=dev, dtype=dtype)
        b = torch.randn(k, n, device=dev, dtype=dtype)
        s = timed(lambda: torch.matmul(a, b))
        row[name + "TflopsPerSecond"] = 2.0 * m * k * n / s / 1e12
    report["gemm"].append(row)
    print(f"{m} x {k} x {n}: fp32 {row['fp32TflopsPerSecond']:.2f}  bf16 {row['bf16TflopsPerSecond']:.2f} TFLOP/s")


class MoE(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.router = torch.nn.Parameter(torch.randn(D, E) * 0.1 / D ** 0.5)
        self.w1 = torch.nn.Parameter(torch.randn(E, D, FH) / D ** 0.5)
        self.b1 = torch.nn.Parameter(torch.zeros(E, FH))
        self.w2 = torch.nn.Parameter(torch.randn(E, FH, D) / FH ** 0.5)
        self.b2 = torch.nn.Parameter(torch.zeros(E, D))

    def forward(self, x):
        logits = x @ self.router
        top, idx = logits.topk(K, dim=-1)
        gates = torch.softmax(top, dim=-1)
        out = torch.zeros_like(x)
        for e in range(E):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            h = F.gelu(x[tok] @ self.w1[e] + self.b1[e], approximate="tanh") @ self.w2[e] + self.b2[e]
            out.index_add_(0, tok, h * gates[tok, slot, None])
        return out


layer = MoE().to(dev)
for tokens in (BATCH, 4096):
    x = torch.randn(tokens, D, device=dev, requires_grad=True)
    dy = torch.randn(tokens, D, device=dev)

    def step():
        y = layer(x)
        y.backward(dy)

    def step_bf16():
        # Mixed precision as Roundhouse's model.precision=bf16: bf16 matmuls, fp32 weights.
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = layer(x)
        y.float().backward(dy)

    ms = timed(step) * 1e3
    bf16_ms = timed(step_bf16) * 1e3
    report["moeLayer"].append({"tokens": tokens, "gpuForwardBackwardMs": ms, "gpuBf16ForwardBackwardMs": bf16_ms})
    print(f"MoE layer forward+backward, {tokens} tokens: fp32 {ms:.3f} ms, bf16 autocast {bf16_ms:.3f} ms")

with open(out, "w") as f:
    json.dump(report, f, indent=2)
