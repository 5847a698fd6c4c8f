#!/usr/bin/python3
"""One MoE layer's forward + backward in PyTorch, as a PyTorch user writes it (a router, softmax
over the top-k logits, a loop over the experts gathering their rows, index_add_ back), at the
shapes `roundhouse bench layer` measures, on the CPU with the given threads. Prints one JSON line:
the median, min and max milliseconds over the timed repetitions.

Usage: /usr/bin/python3 scripts/torch_layer_bench.py --tokens N --dim D --ffn F --experts E --topk K
           [--activation gelu|swiglu] [--threads T] [--seconds S]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as fn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--ffn", type=int, required=True)
    p.add_argument("--experts", type=int, required=True)
    p.add_argument("--topk", type=int, required=True)
    p.add_argument("--activation", choices=["gelu", "swiglu"], default="gelu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seconds", type=float, default=1.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    n, d, f, e, k = a.tokens, a.dim, a.ffn, a.experts, a.topk
    f1 = 2 * f if a.activation == "swiglu" else f
    x = torch.randn(n, d, requires_grad=True)
    dy = torch.randn(n, d)
    router = (torch.randn(d, e) / d ** 0.5).requires_grad_()
    w1 = (torch.randn(e, d, f1) / d ** 0.5).requires_grad_()
    w2 = (torch.randn(e, f, d) / f ** 0.5).requires_grad_()

    def step():
        for t in (x, router, w1, w2):
            t.grad = None
        logits = x @ router
        top, idx = torch.topk(logits, k, dim=1)
        gates = torch.softmax(top, dim=1)
        out = torch.zeros_like(x)
        for j in range(e):
            rows, slot = torch.nonzero(idx == j, as_tuple=True)
            if rows.numel() == 0:
                continue
            h = x[rows] @ w1[j]
            if a.activation == "swiglu":
                h = fn.silu(h[:, :f]) * h[:, f:]
            else:
                h = fn.gelu(h)
            y = (h @ w2[j]) * gates[rows, slot].unsqueeze(1)
            out.index_add_(0, rows, y)
        out.backward(dy)

    warm = time.perf_counter()
    reps = 0
    while reps < 3 or time.perf_counter() - warm < a.seconds / 4:
        step()
        reps += 1
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < a.seconds:
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "reps": len(times),
                      "layer_ms": statistics.median(times), "layer_min_ms": min(times),
                      "layer_max_ms": max(times)}))


if __name__ == "__main__":
    main()
