#!/usr/bin/env python3
"""The Roundhouse MoE-MLP classifier in plain PyTorch, loaded from `roundhouse export` (or a run's export/).

A twin of io.roundhouse.worker.model.MoeClassifier's evaluation forward, written from config.json and
the tensor names alone (docs/architecture.md, "Export to PyTorch"):

    h = embed(x); per layer: h = h + moe(norm(h)); logits = classifier(norm(h))

Standard library and torch only; the safetensors reader is roundhouse_twin.py's. ClassifierTwinParityTest
runs it on a batch and compares its logits with the Java model's.

Usage: roundhouse_classifier_twin.py --model DIR --inputs X.f32 --logits-out OUT.f32
  X.f32: raw little-endian float32 [N, input_size]; OUT.f32: raw little-endian float32 [N, num_labels].
Prints one JSON line: {"min_router_margin": ..., "shape": [N, C]}.
"""

import argparse
import json
import os
import struct
import sys

import torch
import torch.nn.functional as nnf
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roundhouse_twin import RMSNorm, load_safetensors  # noqa: E402


def norm_layer(cfg):
    d, eps = cfg["hidden_size"], cfg["norm_eps"]
    if cfg["norm_type"] == "rmsnorm":
        return RMSNorm(d, eps)
    if cfg["norm_type"] == "layernorm":
        return nn.LayerNorm(d, eps=eps)  # population variance, as Roundhouse's
    raise SystemExit(f"config.json: norm_type {cfg['norm_type']} is not rmsnorm or layernorm")


class Expert(nn.Module):
    def __init__(self, cfg, width=1):
        super().__init__()
        d, f = cfg["hidden_size"], width * cfg["intermediate_size"]
        self.glu = cfg["expert_glu"]
        self.act = cfg["hidden_act"]
        self.w1 = nn.Linear(d, f)
        if self.glu:
            self.w3 = nn.Linear(d, f)
        self.w2 = nn.Linear(f, d)

    def forward(self, x):  # [n, D]
        if self.glu:
            return self.w2(nnf.silu(self.w1(x)) * self.w3(x))
        return self.w2(nnf.gelu(self.w1(x), approximate="tanh"))


class Moe(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.k = cfg["num_experts_per_tok"]
        self.mode = cfg["router_gate"]
        self.sigmoid = cfg.get("scoring_func", "softmax") == "sigmoid"
        self.gate = nn.Linear(cfg["hidden_size"], cfg["num_local_experts"], bias=False)
        if self.sigmoid:  # DeepSeek-V3's selection bias: picks experts, never weights them
            self.gate.register_buffer("e_score_correction_bias", torch.zeros(cfg["num_local_experts"]))
        self.experts = nn.ModuleList(Expert(cfg) for _ in range(cfg["num_local_experts"]))
        shared = cfg.get("n_shared_experts", 0)
        if shared:  # DeepSeekMoE's always-on experts, as one expert of their summed width
            self.shared_experts = Expert(cfg, shared)
        self.margins = []

    def forward(self, x):  # [N, D]
        logits = self.gate(x)  # [N, E]
        choice = torch.sigmoid(logits) + self.gate.e_score_correction_bias if self.sigmoid else logits
        _, idx = torch.topk(choice, self.k, dim=-1)  # [N, K]
        top = logits.gather(1, idx)
        if self.k < logits.shape[-1]:
            kth = choice.gather(1, idx)[:, -1]
            rest = choice.masked_fill(torch.zeros_like(choice, dtype=torch.bool).scatter(1, idx, True), -float("inf"))
            self.margins.append(float((kth - rest.max(-1).values).min()))
        if self.mode == "sigmoid_topk_norm":
            s = torch.sigmoid(logits).gather(1, idx)
            gates = s / s.sum(-1, keepdim=True)
        elif self.mode == "topk_softmax":
            gates = torch.softmax(top, dim=-1)
        else:
            p = torch.softmax(logits, dim=-1).gather(1, idx)
            if self.mode == "softmax_topk":
                gates = p
            elif self.mode == "softmax_topk_renorm":
                gates = p / p.sum(-1, keepdim=True)
            else:
                raise SystemExit(f"config.json: router_gate {self.mode} is unknown")
        y = torch.zeros_like(x)
        for j, expert in enumerate(self.experts):
            rows, slot = (idx == j).nonzero(as_tuple=True)
            if rows.numel():
                y.index_add_(0, rows, gates[rows, slot].unsqueeze(-1) * expert(x[rows]))
        if hasattr(self, "shared_experts"):
            y = y + self.shared_experts(x)
        return y


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = norm_layer(cfg)
        self.moe = Moe(cfg)

    def forward(self, h):
        return h + self.moe(self.norm(h))


class RoundhouseMoeClassifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = nn.Linear(cfg["input_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = norm_layer(cfg)
        self.classifier = nn.Linear(cfg["hidden_size"], cfg["num_labels"])

    def forward(self, x):  # [N, I] → logits [N, C]
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.classifier(self.norm(h))

    def router_margins(self):
        return [m for layer in self.layers for m in layer.moe.margins]


def load(model_dir):
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "roundhouse_moe_classifier":
        raise SystemExit(f"{model_dir}/config.json: model_type {cfg.get('model_type')}, "
                         "expected roundhouse_moe_classifier")
    model = RoundhouseMoeClassifier(cfg)
    model.load_state_dict(load_safetensors(f"{model_dir}/model.safetensors"), strict=True)
    return model.eval(), cfg


def run(argv, doc, load_model, input_size):
    """A twin's command line: --model, --inputs, --logits-out (shared by the image twins)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--model", required=True, help="the export folder (model.safetensors, config.json)")
    ap.add_argument("--inputs", required=True, help="raw little-endian float32 [N, input features]")
    ap.add_argument("--logits-out", required=True, help="where to write the logits, raw little-endian float32 [N, C]")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # a fixed summation order
    model, cfg = load_model(a.model)
    with open(a.inputs, "rb") as f:
        raw = f.read()
    i = input_size(cfg)
    if len(raw) % (4 * i):
        raise SystemExit(f"{a.inputs}: {len(raw)} bytes is not a whole number of rows of {i} float32")
    x = torch.tensor(struct.unpack(f"<{len(raw) // 4}f", raw), dtype=torch.float32).reshape(-1, i)
    with torch.no_grad():
        logits = model(x).contiguous()
    with open(a.logits_out, "wb") as f:
        f.write(struct.pack(f"<{logits.numel()}f", *logits.flatten().tolist()))
    margins = model.router_margins()
    print(json.dumps({"min_router_margin": min(margins) if margins else None, "shape": list(logits.shape)}))


def main(argv):
    run(argv, __doc__, load, lambda cfg: cfg["input_size"])


if __name__ == "__main__":
    main(sys.argv[1:])
