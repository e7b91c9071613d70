"""Two tiny random Llama-architecture models (Hugging Face layout:
config.json + model.safetensors, float32) for the cache's end-to-end
goldens: one with grouped-query attention and one without.

The output head is scaled so that logits spread widely (std ~ 4): greedy
choices are then rarely within float32 rounding of each other, and
llama_ref.py records every step's top-1/top-2 gap anyway.

usage: /usr/bin/python3 tools/cacheref/make_model_fixtures.py [out_dir]
"""
import json
import os
import struct
import sys

import numpy as np

FIXTURES = {
    "tiny-gqa": dict(vocab_size=64, hidden_size=32, intermediate_size=64,
                     num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, seed=11),
    "tiny-mha": dict(vocab_size=48, hidden_size=24, intermediate_size=48,
                     num_hidden_layers=2, num_attention_heads=3,
                     num_key_value_heads=3, seed=12),
}


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = dict(dtype="F32", shape=list(a.shape),
                            data_offsets=[offset, offset + len(b)])
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make(out_dir, name, c):
    rng = np.random.default_rng(c["seed"])
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = H // nh
    t = {}

    def w(*shape, scale=1.0):
        return rng.standard_normal(shape) * scale / np.sqrt(shape[-1])

    t["model.embed_tokens.weight"] = rng.standard_normal((V, H))
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = 1.0 + 0.1 * rng.standard_normal(H)
        t[p + "post_attention_layernorm.weight"] = 1.0 + 0.1 * rng.standard_normal(H)
        # larger q/k: peaked attention, well separated token scores
        t[p + "self_attn.q_proj.weight"] = w(nh * hd, H, scale=2.0)
        t[p + "self_attn.k_proj.weight"] = w(nkv * hd, H, scale=2.0)
        t[p + "self_attn.v_proj.weight"] = w(nkv * hd, H)
        t[p + "self_attn.o_proj.weight"] = w(H, nh * hd)
        t[p + "mlp.gate_proj.weight"] = w(I, H)
        t[p + "mlp.up_proj.weight"] = w(I, H)
        t[p + "mlp.down_proj.weight"] = w(H, I)
    t["model.norm.weight"] = np.ones(H)
    t["lm_head.weight"] = w(V, H, scale=4.0)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"), t)
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama",
               hidden_size=H, intermediate_size=I, vocab_size=V,
               num_hidden_layers=c["num_hidden_layers"],
               num_attention_heads=nh, num_key_value_heads=nkv, head_dim=hd,
               rms_norm_eps=1e-5, rope_theta=10000.0,
               max_position_embeddings=256, tie_word_embeddings=False,
               bos_token_id=1, eos_token_id=2, hidden_act="silu",
               torch_dtype="float32")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/cache"
    for name, c in FIXTURES.items():
        make(out, name, c)


if __name__ == "__main__":
    main()
