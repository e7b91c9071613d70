#!/usr/bin/python3
"""A seeded random-weight Hugging Face folder (config.json + F16
model.safetensors, no tokenizer) for the quantized llama.cpp peer test
(tests/model/peer_llamacpp_quant.sh). Generated at test time, not committed.

  python3 tools/quant/make_peer_fixture.py OUT_DIR --arch llama|qwen2 \\
      [--hidden 256] [--heads 4] [--kv-heads 2] [--ffn 512] [--layers 8] \\
      [--vocab 512] [--tied] [--seed 0]

The embedding (and LM head) is drawn wider than the other matrices so that
greedy choices are clear-cut: the test compares engines' argmax ids.
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=["llama", "qwen2"], default="llama")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    E, H, Hk, F, V, L = a.hidden, a.heads, a.kv_heads, a.ffn, a.vocab, a.layers
    hd = E // H
    os.makedirs(a.out, exist_ok=True)
    qwen = a.arch == "qwen2"
    cfg = dict(architectures=["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"],
               model_type=a.arch, vocab_size=V, hidden_size=E, intermediate_size=F,
               num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=Hk,
               rms_norm_eps=1e-6 if qwen else 1e-5,
               rope_theta=1000000.0 if qwen else 10000.0, max_position_embeddings=1024,
               bos_token_id=1, eos_token_id=2, tie_word_embeddings=a.tied)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    rng = np.random.default_rng(a.seed)
    shapes = [("model.embed_tokens.weight", (V, E), 0.5), ("model.norm.weight", (E,), None)]
    if not a.tied:
        shapes.append(("lm_head.weight", (V, E), 0.5))
    for l in range(L):
        p = "model.layers.%d." % l
        shapes += [(p + "input_layernorm.weight", (E,), None),
                   (p + "post_attention_layernorm.weight", (E,), None),
                   (p + "self_attn.q_proj.weight", (H * hd, E), 0.02),
                   (p + "self_attn.k_proj.weight", (Hk * hd, E), 0.02),
                   (p + "self_attn.v_proj.weight", (Hk * hd, E), 0.02),
                   (p + "self_attn.o_proj.weight", (E, H * hd), 0.02),
                   (p + "mlp.gate_proj.weight", (F, E), 0.02),
                   (p + "mlp.up_proj.weight", (F, E), 0.02),
                   (p + "mlp.down_proj.weight", (E, F), 0.02)]
        if qwen:
            shapes += [(p + "self_attn.q_proj.bias", (H * hd,), 0.1),
                       (p + "self_attn.k_proj.bias", (Hk * hd,), 0.1),
                       (p + "self_attn.v_proj.bias", (Hk * hd,), 0.1)]
    header, off, blobs = {}, 0, []
    for name, shape, scale in shapes:
        w = rng.standard_normal(shape, dtype=np.float32)
        w = 1.0 + 0.1 * w if scale is None else scale * w
        b = w.astype(np.float16).tobytes()
        header[name] = dict(dtype="F16", shape=list(shape), data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
