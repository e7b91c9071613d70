"""Llama-architecture model for kvp-mini, written for torch 1.13 on CPU.

Same maths as HF LlamaForCausalLM (RMSNorm, rotate_half RoPE, SwiGLU,
grouped-query attention), so the exported weights load there unchanged.
torch 1.13 has no fused attention: attention here is blocked over queries and
skips the key blocks above the causal diagonal, so a 4096-token sequence never
materialises the full score matrix.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, vocab_size=2048, dim=256, n_layers=4, n_heads=8, n_kv_heads=2,
                 hidden=768, eps=1e-5, rope_theta=10000.0, max_pos=4096, tie=False):
        self.vocab_size, self.dim, self.n_layers = vocab_size, dim, n_layers
        self.n_heads, self.n_kv_heads, self.hidden = n_heads, n_kv_heads, hidden
        self.head_dim = dim // n_heads
        self.eps, self.rope_theta, self.max_pos, self.tie = eps, rope_theta, max_pos, tie

    def to_hf(self):
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.dim,
            "intermediate_size": self.hidden,
            "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_kv_heads,
            "num_hidden_layers": self.n_layers,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "attention_bias": False,
            "mlp_bias": False,
            "max_position_embeddings": self.max_pos,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": self.tie,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "float16",
        }

    @staticmethod
    def from_hf(c):
        return Config(vocab_size=c["vocab_size"], dim=c["hidden_size"],
                      n_layers=c["num_hidden_layers"], n_heads=c["num_attention_heads"],
                      n_kv_heads=c["num_key_value_heads"], hidden=c["intermediate_size"],
                      eps=c["rms_norm_eps"], rope_theta=c["rope_theta"],
                      max_pos=c["max_position_embeddings"], tie=c["tie_word_embeddings"])


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # In fp32 even under autocast, as HF does.
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(cfg, positions):
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
    f = positions.float()[:, None] * inv[None, :]
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def attention(q, k, v, q_pos0, block=256):
    """q: (B, H, Lq, D) at positions q_pos0.. ; k, v: (B, KV, Lk, D) at 0..Lk-1.

    Scores and softmax stay in the input dtype: under bf16 autocast the fp32
    round trip of the score matrix cost two thirds of a 4096-token step."""
    B, H, Lq, D = q.shape
    KV = k.shape[1]
    g = H // KV
    q = (q * (1.0 / math.sqrt(D))).reshape(B, KV, g, Lq, D)
    outs = []
    for s in range(0, Lq, block):
        e = min(Lq, s + block)
        nk = q_pos0 + e  # keys this block of queries can see
        qb = q[:, :, :, s:e].reshape(B, KV, g * (e - s), D)
        att = torch.matmul(qb, k[:, :, :nk].transpose(-1, -2)).view(B, KV, g, e - s, nk)
        qi = torch.arange(q_pos0 + s, q_pos0 + e)
        mask = torch.arange(nk)[None, :] > qi[:, None]
        if bool(mask.any()):
            att = att.masked_fill(mask, float("-inf"))
        p = att.softmax(-1).to(v.dtype).view(B, KV, g * (e - s), nk)
        outs.append(torch.matmul(p, v[:, :, :nk]).view(B, KV, g, e - s, D))
    return torch.cat(outs, dim=3).reshape(B, H, Lq, D)


def window_hinge(q, k, probes, window, tau):
    """Observation-window loss of one layer, per KV stream (the heads of a
    group summed, as the cache's per-kv-head scores are): the share of the
    attention of the last `window` prompt queries that falls on each target
    token, pushed above `tau` by a hinge on its log.  probes[b] is None or
    (prompt_length, LongTensor of target positions).  Returns a list of
    per-sample losses."""
    B, H, L, D = q.shape
    KV = k.shape[1]
    g = H // KV
    out = []
    for b, pr in enumerate(probes):
        if pr is None:
            continue
        a, tgt = pr
        w = min(window, a)
        qw = q[b, :, a - w:a].float().reshape(KV, g * w, D) * (1.0 / math.sqrt(D))
        logits = torch.matmul(qw, k[b, :, :a].float().transpose(-1, -2))
        qi = torch.arange(a - w, a).repeat(g)
        logits = logits.masked_fill(torch.arange(a)[None, :] > qi[:, None], float("-inf"))
        share = logits.softmax(-1).sum(1) / (g * w)
        out.append(F.relu(math.log(tau) - torch.log(share[:, tgt] + 1e-12)).mean())
    return out


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.dim, cfg.head_dim
        self.input_layernorm = RMSNorm(d, cfg.eps)
        self.q_proj = nn.Linear(d, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, cfg.eps)
        self.gate_proj = nn.Linear(d, cfg.hidden, bias=False)
        self.up_proj = nn.Linear(d, cfg.hidden, bias=False)
        self.down_proj = nn.Linear(cfg.hidden, d, bias=False)

    def forward(self, x, cos, sin, pos0, cache, probe=None):
        c = self.cfg
        B, L, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, L, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, L, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, L, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        if probe is not None:
            probe["losses"] += window_hinge(q, k, probe["samples"], probe["window"], probe["tau"])
        a = attention(q, k, v, pos0).transpose(1, 2).reshape(B, L, c.n_heads * c.head_dim)
        x = x + self.o_proj(a)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.dim, cfg.eps)
        self.lm_head = None if cfg.tie else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        for n, p in self.named_parameters():
            if p.dim() == 2:
                s = std
                # Residual-branch outputs scaled down so the stream stays O(1) at init.
                if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                    s = std / math.sqrt(2 * self.cfg.n_layers)
                nn.init.normal_(p, 0.0, s)

    def forward(self, ids, pos0=0, caches=None, probe=None):
        """Logits; with `probe` (see window_hinge: samples, window, tau) the
        observation-window losses of every layer are appended to
        probe["losses"]."""
        B, L = ids.shape
        cos, sin = rope_cos_sin(self.cfg, torch.arange(pos0, pos0 + L))
        x = self.embed_tokens(ids).float()
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, pos0, None if caches is None else caches[i], probe)
        x = self.norm(x)
        w = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, w)

    @torch.no_grad()
    def generate(self, ids, max_new, eos=2):
        """Greedy decoding with a KV cache; ids is a list of token ids."""
        caches = [dict() for _ in self.layers]
        logits = self.forward(torch.tensor([ids]), 0, caches)
        out, pos = [], len(ids)
        for _ in range(max_new):
            t = int(logits[0, -1].float().argmax())
            if t == eos:
                break
            out.append(t)
            logits = self.forward(torch.tensor([[t]]), pos, caches)
            pos += 1
        return out


def hf_state_dict(model):
    """Parameters under the standard HF Llama tensor names."""
    sd = {}
    for n, p in model.state_dict().items():
        if n.startswith("layers."):
            parts = n.split(".")
            i, rest = parts[1], ".".join(parts[2:])
            if rest.split(".")[0] in ("q_proj", "k_proj", "v_proj", "o_proj"):
                sd["model.layers.%s.self_attn.%s" % (i, rest)] = p
            elif rest.split(".")[0] in ("gate_proj", "up_proj", "down_proj"):
                sd["model.layers.%s.mlp.%s" % (i, rest)] = p
            else:
                sd["model.layers.%s.%s" % (i, rest)] = p
        elif n.startswith("lm_head"):
            sd[n] = p
        else:
            sd["model." + n] = p
    return sd


def load_hf_state_dict(model, sd):
    """Inverse of hf_state_dict (same parameter order)."""
    names = list(model.state_dict().keys())
    hf_names = list(hf_state_dict(model).keys())
    model.load_state_dict({a: sd[b] for a, b in zip(names, hf_names)})
