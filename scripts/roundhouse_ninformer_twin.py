#!/usr/bin/env python3
"""The Roundhouse NiNformer in plain PyTorch, loaded from `roundhouse export` (or a run's export/).

A twin of io.roundhouse.worker.model.Ninformer's evaluation forward, written from config.json and the
tensor names alone (docs/architecture.md, "Export to PyTorch"):

    h = embed(patches(x)); per layer: u = norm1(h); h = h + gate(u) * mixer(u); h = h + ffn(norm2(h))
    logits = classifier(mean over the patches of norm(h))

The MoE FFN, the experts and the norms are roundhouse_classifier_twin.py's. NinformerTwinParityTest runs
it on a batch and compares its logits with the Java model's.

Usage: roundhouse_ninformer_twin.py --model DIR --inputs X.f32 --logits-out OUT.f32
  X.f32: raw little-endian float32 [N, num_channels * image_size^2]; OUT.f32: float32 [N, num_labels].
Prints one JSON line: {"min_router_margin": ..., "shape": [N, C]}.
"""

import json
import os
import sys

import torch
import torch.nn.functional as nnf
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roundhouse_classifier_twin import Moe, norm_layer, run  # noqa: E402
from roundhouse_twin import load_safetensors  # noqa: E402


class GeluMlp(nn.Module):
    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(nnf.gelu(self.fc1(x), approximate="tanh"))


class Mixer(nn.Module):
    """MLP-Mixer block over an image's patches: token mixing across the P patches, then channel mixing."""

    def __init__(self, cfg):
        super().__init__()
        p, d = cfg["num_patches"], cfg["hidden_size"]
        self.norm_t = norm_layer(cfg)
        self.token = GeluMlp(p, cfg["token_hidden_size"], p)
        self.norm_c = norm_layer(cfg)
        self.channel = GeluMlp(d, cfg["channel_hidden_size"], d)

    def forward(self, u):  # [N, P, D]
        v = u + self.token(self.norm_t(u).transpose(1, 2)).transpose(1, 2)
        return v + self.channel(self.norm_c(v))


class Layer(nn.Module):
    def __init__(self, cfg, moe):
        super().__init__()
        d = cfg["hidden_size"]
        self.norm1 = norm_layer(cfg)
        self.gate = nn.Linear(d, d)
        self.mixer = Mixer(cfg)
        self.norm2 = norm_layer(cfg)
        if moe:
            self.moe = Moe(cfg)
        else:
            self.ffn = GeluMlp(d, cfg["dense_intermediate_size"], d)

    def forward(self, h):  # [N, P, D]
        u = self.norm1(h)
        h = h + self.gate(u) * self.mixer(u)
        x = self.norm2(h)
        if hasattr(self, "moe"):
            return h + self.moe(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return h + self.ffn(x)


class RoundhouseNinformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c, self.s, self.p = cfg["num_channels"], cfg["image_size"], cfg["patch_size"]
        d, every = cfg["hidden_size"], cfg["moe_every"]
        self.embed = nn.Linear(self.c * self.p * self.p, d)
        self.layers = nn.ModuleList(Layer(cfg, every > 0 and (i + 1) % every == 0)
                                    for i in range(cfg["num_hidden_layers"]))
        self.norm = norm_layer(cfg)
        self.classifier = nn.Linear(d, cfg["num_labels"])

    def patches(self, x):  # [N, c*S*S] -> [N, P, c*p*p]
        n, c, p, k = x.shape[0], self.c, self.p, self.s // self.p
        return x.reshape(n, c, k, p, k, p).permute(0, 2, 4, 1, 3, 5).reshape(n, k * k, c * p * p)

    def forward(self, x):
        h = self.embed(self.patches(x))
        for layer in self.layers:
            h = layer(h)
        return self.classifier(self.norm(h).mean(dim=1))

    def router_margins(self):
        return [m for layer in self.layers if hasattr(layer, "moe") for m in layer.moe.margins]


def load(model_dir):
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "roundhouse_ninformer":
        raise SystemExit(f"{model_dir}/config.json: model_type {cfg.get('model_type')}, expected roundhouse_ninformer")
    model = RoundhouseNinformer(cfg)
    model.load_state_dict(load_safetensors(f"{model_dir}/model.safetensors"), strict=True)
    return model.eval(), cfg


def main(argv):
    run(argv, __doc__, load, lambda cfg: cfg["num_channels"] * cfg["image_size"] ** 2)


if __name__ == "__main__":
    main(sys.argv[1:])
