#!/usr/bin/python3
"""A plain-PyTorch twin of Roundhouse's MoE transformer language model.

Reads what `roundhouse export --format safetensors` writes (model.safetensors + config.json),
builds the model the way PyTorch users write it (Mixtral-style sparse MoE block with a loop over
experts, attention as matmul + causal mask + softmax, RoPE rotate-half, RMSNorm or LayerNorm,
SwiGLU or GELU experts, the sigmoid output gate) and computes the logits of a batch. PyTorch (1.13 or later, CPU) and the standard
library only.

    roundhouse_twin.py --model DIR --tokens FILE --logits-out FILE
    roundhouse_twin.py bench --model DIR --text FILE --batch B --steps N --warmup W --threads C ...

FILE (tokens) is a JSON list of B lists of T token ids (bytes 0..255); the logits are written as
raw little-endian float32 [B, T, V]. Prints one JSON line: {"min_router_margin": m, ...}, m the
smallest gap, over every token and MoE layer, between the k-th and (k+1)-th largest router logits
(a near-tie there may pick other experts than the Java model under rounding).

`bench` times full training steps the way a PyTorch user trains this model: random windows of T+1
bytes of the text, forward, cross-entropy plus the router losses (Switch load balance α·E·Σ f·P,
z-loss β·mean lse²: Roundhouse's), backward, gradient clipping, torch.optim.AdamW; it prints one JSON
line with the torch version, threads, tokens/s and milliseconds per step by phase (the median of
the timed steps). `roundhouse bench lm` runs it beside Roundhouse at the same shapes.

Legend: B sequences, T tokens each, D hidden, H heads, Hkv key/value heads, dh head width,
E experts, K top-k, F expert hidden, V vocabulary.
"""
import argparse
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as nnf
from torch import nn

DTYPES = {"F32": torch.float32}


def load_safetensors(path):
    """{name: tensor} from a safetensors file, parsed by hand (no safetensors package needed)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = bytearray(raw[8 + n:])  # writable, so torch.frombuffer does not warn
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor {name} has dtype {t['dtype']}; this twin reads F32 only")
        begin, end = t["data_offsets"]
        count = (end - begin) // 4
        x = torch.frombuffer(data, dtype=torch.float32, count=count, offset=begin) if count else torch.zeros(0)
        out[name] = x.reshape(t["shape"]).clone()
    return out


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):  # [.., D]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def norm_layer(cfg):
    d, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
    kind = cfg.get("norm_type", "rmsnorm")
    if kind == "rmsnorm":
        return RMSNorm(d, eps)
    if kind == "layernorm":
        return nn.LayerNorm(d, eps=eps)  # the population variance, as Roundhouse's
    raise SystemExit(f"config.json: norm_type {kind} is not rmsnorm or layernorm")


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(t, dh, theta):
    inv_freq = theta ** (-torch.arange(0, dh, 2, dtype=torch.float64) / dh)  # [dh/2]
    angles = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, dh/2]
    angles = torch.cat((angles, angles), dim=-1)  # [T, dh]
    return angles.cos().float(), angles.sin().float()


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, h, hkv, dh = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.h, self.hkv, self.dh, self.theta = h, hkv, dh, cfg["rope_theta"]
        self.q_proj = nn.Linear(d, h * dh, bias=False)
        self.k_proj = nn.Linear(d, hkv * dh, bias=False)
        self.v_proj = nn.Linear(d, hkv * dh, bias=False)
        self.o_proj = nn.Linear(h * dh, d, bias=False)
        self.o_gate = nn.Linear(d, h * dh, bias=False) if cfg["attention_output_gate"] else None

    def forward(self, x):  # x [B, T, D]
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.dh).transpose(1, 2)  # [B, H, T, dh]
        k = self.k_proj(x).view(b, t, self.hkv, self.dh).transpose(1, 2)  # [B, Hkv, T, dh]
        v = self.v_proj(x).view(b, t, self.hkv, self.dh).transpose(1, 2)
        cos, sin = rope_cos_sin(t, self.dh, self.theta)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = self.h // self.hkv
        k = k.repeat_interleave(group, dim=1)  # query head j reads key/value head j // group
        v = v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)  # [B, H, T, T]
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        o = torch.softmax(scores, dim=-1) @ v  # [B, H, T, dh]
        o = o.transpose(1, 2).reshape(b, t, self.h * self.dh)
        if self.o_gate is not None:
            o = o * torch.sigmoid(self.o_gate(x))
        return self.o_proj(o)


class Expert(nn.Module):
    """Mixtral's expert, w2(silu(w1(x)) * w3(x)); without glu w2(gelu(w1(x))) (tanh approximation)."""

    def __init__(self, d, f, glu=True):
        super().__init__()
        self.glu = glu
        self.w1 = nn.Linear(d, f, bias=False)
        if glu:
            self.w3 = nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)

    def forward(self, x):
        if self.glu:
            return self.w2(nnf.silu(self.w1(x)) * self.w3(x))
        return self.w2(nnf.gelu(self.w1(x), approximate="tanh"))


class SparseMoeBlock(nn.Module):
    """In the style of Hugging Face's MixtralSparseMoeBlock, with Roundhouse's three gate modes."""

    def __init__(self, cfg):
        super().__init__()
        d, self.e, self.k = cfg["hidden_size"], cfg["num_local_experts"], cfg["num_experts_per_tok"]
        self.mode = cfg["router_gate"]
        self.sigmoid = cfg.get("scoring_func", "softmax") == "sigmoid"
        self.gate = nn.Linear(d, self.e, bias=False)
        if self.sigmoid:  # DeepSeek-V3's selection bias: picks experts, never weights them
            self.gate.register_buffer("e_score_correction_bias", torch.zeros(self.e))
        glu = cfg.get("expert_glu", True)
        self.experts = nn.ModuleList([Expert(d, cfg["intermediate_size"], glu) for _ in range(self.e)])
        shared = cfg.get("n_shared_experts", 0)
        if shared:  # DeepSeekMoE's always-on experts, as one expert of their summed width
            self.shared_experts = Mlp(d, shared * cfg["intermediate_size"], glu)
        self.margins = []

    def forward(self, x):  # [B, T, D]
        b, t, d = x.shape
        x = x.reshape(-1, d)  # [N, D]
        logits = self.gate(x)  # [N, E]
        if self.training:
            self.aux = self.router_losses(logits)
        # top-k; stable descending order gives ties to the lower expert index, as the kernels do
        scores = torch.sigmoid(logits) if self.sigmoid else logits
        choice = scores + self.gate.e_score_correction_bias if self.sigmoid else logits
        order = torch.sort(choice, dim=-1, descending=True, stable=True)
        selected = order.indices[:, :self.k]  # [N, K]
        top_logits = logits.gather(1, selected)
        if self.k < self.e:
            self.margins.append((order.values[:, self.k - 1] - order.values[:, self.k]).min().item())
        if self.mode == "sigmoid_topk_norm":
            chosen = scores.gather(1, selected)
            weights = chosen / chosen.sum(dim=-1, keepdim=True)
        elif self.mode == "topk_softmax":
            weights = torch.softmax(top_logits, dim=-1)
        else:
            probs = torch.softmax(logits, dim=-1)
            weights = probs.gather(1, selected)
            if self.mode == "softmax_topk_renorm":
                weights = weights / weights.sum(dim=-1, keepdim=True)
            elif self.mode != "softmax_topk":
                raise SystemExit(f"router_gate {self.mode} is unknown to this twin")
        out = torch.zeros_like(x)
        mask = nnf.one_hot(selected, num_classes=self.e).permute(2, 1, 0)  # [E, K, N]
        for j in range(self.e):
            slot, token = torch.where(mask[j])
            if token.numel() == 0:
                continue
            y = self.experts[j](x[token]) * weights[token, slot, None]
            out.index_add_(0, token, y)
        if hasattr(self, "shared_experts"):
            out = out + self.shared_experts(x)
        return out.reshape(b, t, d)

    def router_losses(self, logits):
        """(Switch load balance E·Σ_j f_j·P_j, z-loss mean lse²) of one batch's router logits [N, E]."""
        n = logits.shape[0]
        if self.sigmoid:  # the scores normalised over every expert (DeepSeek-V3's balance loss)
            s = torch.sigmoid(logits)
            chosen = (s + self.gate.e_score_correction_bias).topk(self.k, dim=-1).indices
            p = (s / s.sum(-1, keepdim=True)).mean(0)
        else:
            chosen = logits.topk(self.k, dim=-1).indices  # ties aside, the experts the forward picks
            p = torch.softmax(logits, dim=-1).mean(0)
        f = torch.bincount(chosen.flatten(), minlength=self.e).float() / (n * self.k)
        lse = torch.logsumexp(logits, dim=-1)
        return self.e * (f * p).sum(), (lse * lse).mean()


class Mlp(nn.Module):
    """A dense block's SwiGLU FFN (Llama's names); without glu down(gelu(up(x))) (shared GELU experts)."""

    def __init__(self, d, f, glu=True):
        super().__init__()
        self.glu = glu
        if glu:
            self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        if self.glu:
            return self.down_proj(nnf.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(nnf.gelu(self.up_proj(x), approximate="tanh"))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, moe):
        super().__init__()
        d = cfg["hidden_size"]
        self.input_layernorm = norm_layer(cfg)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = norm_layer(cfg)
        if moe:
            self.block_sparse_moe = SparseMoeBlock(cfg)
        else:
            self.mlp = Mlp(d, cfg["dense_intermediate_size"])

    def forward(self, x):
        h = x + self.self_attn(self.input_layernorm(x))
        ffn = self.block_sparse_moe if hasattr(self, "block_sparse_moe") else self.mlp
        return h + ffn(self.post_attention_layernorm(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], d)
        moe = set(cfg["moe_layers"])
        self.layers = nn.ModuleList([DecoderLayer(cfg, i in moe) for i in range(cfg["num_hidden_layers"])])
        self.norm = norm_layer(cfg)

    def forward(self, ids):  # [B, T] → [B, T, D]
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h)
        return self.norm(h)


class RoundhouseMoeForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = Model(cfg)
        self.tied = cfg["tie_word_embeddings"]
        if not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def forward(self, ids):  # [B, T] → logits [B, T, V]
        h = self.model(ids)
        return h @ self.model.embed_tokens.weight.T if self.tied else self.lm_head(h)

    def router_losses(self):
        """Σ over the MoE layers of (load balance, z-loss) of the last training forward."""
        moes = [layer.block_sparse_moe for layer in self.model.layers if hasattr(layer, "block_sparse_moe")]
        return sum(m.aux[0] for m in moes), sum(m.aux[1] for m in moes)

    def router_margins(self):
        return [m for layer in self.model.layers if hasattr(layer, "block_sparse_moe")
                for m in layer.block_sparse_moe.margins]


def load(model_dir):
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "roundhouse_moe":
        raise SystemExit(f"{model_dir}/config.json: model_type {cfg.get('model_type')}, expected roundhouse_moe")
    model = RoundhouseMoeForCausalLM(cfg)
    state = load_safetensors(f"{model_dir}/model.safetensors")
    model.load_state_dict(state, strict=True)  # every tensor used, every parameter given
    return model.eval(), cfg


def bench(argv):
    ap = argparse.ArgumentParser(prog="roundhouse_twin.py bench", description="PyTorch training steps, timed")
    ap.add_argument("--model", required=True, help="an export folder: config.json (shapes) and the starting weights")
    ap.add_argument("--text", required=True, help="the training bytes, raw")
    ap.add_argument("--batch", type=int, required=True, help="sequences per step")
    ap.add_argument("--steps", type=int, required=True, help="timed steps")
    ap.add_argument("--warmup", type=int, required=True, help="untimed steps before them")
    ap.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--clip", type=float, default=0.0, help="gradient-norm clip; 0: none")
    ap.add_argument("--load-balance", type=float, default=0.0, help="α of the load-balance loss")
    ap.add_argument("--z-loss", type=float, default=0.0, help="β of the z-loss")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model, cfg = load(a.model)
    model.train()
    with open(a.text, "rb") as f:
        text = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    t = cfg["max_position_embeddings"]
    if text.numel() < t + 2:
        raise SystemExit(f"{a.text}: {text.numel()} bytes, fewer than one sequence of {t + 1}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(a.beta1, a.beta2), weight_decay=a.weight_decay)
    gen = torch.Generator().manual_seed(a.seed)
    window = torch.arange(t + 1)
    phases = {"forward": [], "backward": [], "optimizer": []}
    for step in range(a.warmup + a.steps):
        start = torch.randint(0, text.numel() - t - 1, (a.batch,), generator=gen)
        seqs = text[start[:, None] + window[None, :]]  # [B, T+1]
        t0 = time.perf_counter()
        logits = model(seqs[:, :-1])
        loss = nnf.cross_entropy(logits.reshape(-1, logits.shape[-1]), seqs[:, 1:].reshape(-1))
        if any(hasattr(layer, "block_sparse_moe") for layer in model.model.layers):
            lb, z = model.router_losses()
            loss = loss + a.load_balance * lb + a.z_loss * z
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if step >= a.warmup:
            phases["forward"].append(t1 - t0)
            phases["backward"].append(t2 - t1)
            phases["optimizer"].append(t3 - t2)
    steps = [f + b + o for f, b, o in zip(phases["forward"], phases["backward"], phases["optimizer"])]
    median = lambda v: sorted(v)[len(v) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch, "seqLen": t,
                      "steps": a.steps, "tokensPerSecond": a.batch * t * len(steps) / sum(steps),
                      "stepMs": 1000 * median(steps), "finalLoss": loss.item(),
                      "phaseMs": {k: 1000 * median(v) for k, v in phases.items()}}))


def main(argv):
    if argv and argv[0] == "bench":
        return bench(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the export folder (model.safetensors, config.json)")
    ap.add_argument("--tokens", required=True, help="JSON file: a list of B lists of T token ids")
    ap.add_argument("--logits-out", required=True, help="where to write the logits, raw little-endian float32 [B,T,V]")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # a fixed summation order
    model, cfg = load(a.model)
    with open(a.tokens) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    if ids.dim() != 2:
        raise SystemExit(f"{a.tokens}: expected a list of B lists of T token ids")
    with torch.no_grad():
        logits = model(ids).contiguous()
    with open(a.logits_out, "wb") as f:
        f.write(struct.pack(f"<{logits.numel()}f", *logits.flatten().tolist()))
    margins = model.router_margins()
    print(json.dumps({"min_router_margin": min(margins) if margins else None,
                      "shape": list(logits.shape)}))


if __name__ == "__main__":
    main(sys.argv[1:])
