#!/usr/bin/env python3
"""Writes tests/data/eval/tiny-model/: a random 1-layer Llama (vocab 2048,
hidden 32) with the bundled model's tokenizer files, so that the needle
pipeline (gen -> pred -> eval) can be tested end to end in seconds. Its
answers are noise; the tests check plumbing (resumability, layout, equality
with `kvprune generate`), not accuracy.

    /usr/bin/python3 tools/eval/make_tiny_model.py   (from the repository root)
"""
import json
import os
import shutil
import struct

import numpy as np

OUT = os.path.join("tests", "data", "eval", "tiny-model")
SRC_TOK = os.path.join("models", "kvp-mini")


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = arr.astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    rng = np.random.default_rng(11)
    V, D, F, H, KV, L = 2048, 32, 64, 4, 2, 1
    hd = D // H
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32",
           "vocab_size": V, "hidden_size": D, "intermediate_size": F, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "max_position_embeddings": 4096, "bos_token_id": 1,
           "eos_token_id": 2, "tie_word_embeddings": True}
    t = {"model.embed_tokens.weight": rng.normal(0, 0.5, (V, D)),
         "model.norm.weight": np.ones(D)}
    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = np.ones(D)
        t[p + "post_attention_layernorm.weight"] = np.ones(D)
        t[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.3, (H * hd, D))
        t[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.3, (KV * hd, D))
        t[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.3, (KV * hd, D))
        t[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.3, (D, H * hd))
        t[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.3, (F, D))
        t[p + "mlp.up_proj.weight"] = rng.normal(0, 0.3, (F, D))
        t[p + "mlp.down_proj.weight"] = rng.normal(0, 0.3, (D, F))
    os.makedirs(OUT, exist_ok=True)
    save_safetensors(os.path.join(OUT, "model.safetensors"), t)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(SRC_TOK, name), os.path.join(OUT, name))


if __name__ == "__main__":
    main()
