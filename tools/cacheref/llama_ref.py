"""A whole Llama-family forward in float64 numpy (Hugging Face semantics:
RMSNorm, rotate_half RoPE, SwiGLU MLP, grouped-query attention) with the
pruning cache of cacheref.py, and greedy decoding. Independent of the C
sources. Reads a Hugging Face folder (config.json + model.safetensors)."""
import json
import math
import os
import struct

import numpy as np

import cacheref

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[h["dtype"]]).reshape(
            h["shape"]).astype(np.float64)
    return out


class Llama:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        self.w = load_safetensors(os.path.join(folder, "model.safetensors"))
        c = self.cfg
        self.n_layer = c["num_hidden_layers"]
        self.n_head = c["num_attention_heads"]
        self.n_head_kv = c.get("num_key_value_heads", self.n_head)
        self.hd = c.get("head_dim", c["hidden_size"] // self.n_head)
        self.eps = c["rms_norm_eps"]
        self.theta = c.get("rope_theta", 10000.0)

    def rms(self, x, w):
        return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        # x [n][heads][hd]; HF rotate_half: pairs (i, i + hd/2)
        half = self.hd // 2
        inv = 1.0 / (self.theta ** (np.arange(0, self.hd, 2) / self.hd))
        ang = np.asarray(pos, dtype=np.float64)[:, None] * inv[None, :]
        cos = np.concatenate([np.cos(ang), np.cos(ang)], -1)[:, None, :]
        sin = np.concatenate([np.sin(ang), np.sin(ang)], -1)[:, None, :]
        rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def forward(self, cache, ids, n_prompt_total):
        """Runs ids through the model appended to the cache; returns the
        logits of every position [n][vocab]."""
        w, n = self.w, len(ids)
        pos = np.arange(cache.n_seen, cache.n_seen + n)
        x = w["model.embed_tokens.weight"][np.asarray(ids)]
        cache.begin(n, n_prompt_total)
        for l in range(self.n_layer):
            p = f"model.layers.{l}."
            h = self.rms(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, self.n_head, self.hd)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, self.n_head_kv, self.hd)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, self.n_head_kv, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            o = cache.attend(l, q, k, v).reshape(n, self.n_head * self.hd)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + ((g / (1.0 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
        cache.end()
        x = self.rms(x, w["model.norm.weight"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return x @ head.T

    def generate(self, cache, prompt, n_new, chunk=0):
        """Greedy decoding (EOS ignored). Returns ids, the logits each id was
        chosen from, the kept positions after the prefill, and each step's
        top-1 minus top-2 logit gap."""
        cache.reset()
        P = len(prompt)
        chunk = chunk if chunk > 0 else P
        for s in range(0, P, chunk):
            logits = self.forward(cache, prompt[s:s + chunk], P)[-1]
        kept_prefill = cache.kept()
        ids, all_logits, gaps = [], [], []
        for t in range(n_new):
            order = np.argsort(-logits, kind="stable")
            ids.append(int(order[0]))
            all_logits.append(logits)
            gaps.append(float(logits[order[0]] - logits[order[1]]))
            if t + 1 < n_new:
                logits = self.forward(cache, [ids[-1]], 0)[-1]
        return ids, all_logits, kept_prefill, gaps
