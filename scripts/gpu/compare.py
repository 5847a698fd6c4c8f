#!/usr/bin/env python3
"""The issue's table from one GPU run: Roundhouse's `bench cuda` against the PyTorch baseline on the
same GPU, as ratios, with the targets (bf16 GEMM >= 0.5x torch.matmul, MoE layer within 2x PyTorch).
Usage: compare.py BENCH_CUDA.json TORCH.json"""
import json
import sys

ours = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
print(f"GPU: {ours.get('device')} | torch {torch.get('torch')}")
print()
print("| GEMM m x k x n | ours fp32 | torch fp32 | ratio | ours bf16 | ours bf16 prefetch | torch bf16 | best ratio | >= 0.5 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
theirs = {(g["m"], g["k"], g["n"]): g for g in torch["gemm"]}
for g in ours["gemm"]:
    t = theirs.get((g["m"], g["k"], g["n"]))
    if t is None:
        continue
    best = max(g["bf16TflopsPerSecond"], g.get("bf16PrefetchTflopsPerSecond", 0))
    ratio = best / t["bf16TflopsPerSecond"]
    print(f"| {g['m']} x {g['k']} x {g['n']} | {g['fp32TflopsPerSecond']:.1f} | {t['fp32TflopsPerSecond']:.1f} | "
          f"{g['fp32TflopsPerSecond'] / t['fp32TflopsPerSecond']:.2f} | {g['bf16TflopsPerSecond']:.1f} | "
          f"{g.get('bf16PrefetchTflopsPerSecond', float('nan')):.1f} | {t['bf16TflopsPerSecond']:.1f} | "
          f"{ratio:.2f} | {'yes' if ratio >= 0.5 else 'no'} |")
print()
print("| MoE layer fwd+bwd, tokens | ours fp32 ms | torch fp32 ms | ratio | ours bf16 ms | torch bf16 ms | ratio | <= 2 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
theirs = {m["tokens"]: m for m in torch["moeLayer"]}
for m in ours["moeLayer"]:
    t = theirs.get(m["tokens"])
    if t is None:
        continue
    r32 = m["gpuForwardBackwardMs"] / t["gpuForwardBackwardMs"]
    r16 = m["gpuBf16ForwardBackwardMs"] / t["gpuBf16ForwardBackwardMs"]
    print(f"| {m['tokens']} | {m['gpuForwardBackwardMs']:.3f} | {t['gpuForwardBackwardMs']:.3f} | {r32:.2f} | "
          f"{m['gpuBf16ForwardBackwardMs']:.3f} | {t['gpuBf16ForwardBackwardMs']:.3f} | {r16:.2f} | "
          f"{'yes' if min(r32, r16) <= 2 else 'no'} |")
c = ours.get("copy")
if c:
    print()
    print(f"copies of {c['bytes'] >> 20} MiB, GB/s: device->pinned {c['deviceToPinnedGBps']:.1f}, pinned->device "
          f"{c['pinnedToDeviceGBps']:.1f}, device->float[] {c['deviceToPageableGBps']:.1f}, float[]->device "
          f"{c['pageableToDeviceGBps']:.1f}")
