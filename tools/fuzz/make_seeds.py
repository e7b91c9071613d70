#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/).

    /usr/bin/python3 tools/fuzz/make_seeds.py BUILD/kvprune    (from the repository root)

Small valid inputs of each format, so that the fuzzer starts from inside the
parsers: a tiny Llama model (random weights, 1 layer, hidden 8) as a
safetensors folder and as GGUF (made by `kvprune convert`), configs of each
architecture, the test tokenizers, texts, chat messages, NIAH lines and
command lines. The fuzzer's own discoveries are not committed.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

OUT = os.path.join("fuzz", "corpus")


def seed(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, dtype="F32"):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        if dtype == "F32":
            b = arr.astype("<f4").tobytes()
        else:  # BF16: the high halves of the float32s
            b = (arr.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_model(rng):
    E, F, V, H, KV, D = 8, 16, 32, 2, 1, 4
    t = {"model.embed_tokens.weight": rng.standard_normal((V, E)),
         "model.norm.weight": np.ones(E)}
    p = "model.layers.0."
    t[p + "input_layernorm.weight"] = np.ones(E)
    t[p + "post_attention_layernorm.weight"] = np.ones(E)
    t[p + "self_attn.q_proj.weight"] = rng.standard_normal((H * D, E))
    t[p + "self_attn.k_proj.weight"] = rng.standard_normal((KV * D, E))
    t[p + "self_attn.v_proj.weight"] = rng.standard_normal((KV * D, E))
    t[p + "self_attn.o_proj.weight"] = rng.standard_normal((E, H * D))
    t[p + "mlp.gate_proj.weight"] = rng.standard_normal((F, E))
    t[p + "mlp.up_proj.weight"] = rng.standard_normal((F, E))
    t[p + "mlp.down_proj.weight"] = rng.standard_normal((E, F))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V,
           "hidden_size": E, "intermediate_size": F, "num_hidden_layers": 1,
           "num_attention_heads": H, "num_key_value_heads": KV, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "max_position_embeddings": 64, "bos_token_id": 1,
           "eos_token_id": 2, "tie_word_embeddings": True}
    return t, cfg


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    cli = sys.argv[1]
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    rng = np.random.default_rng(12)
    tensors, cfg = tiny_model(rng)
    st32 = safetensors(tensors)
    seed("safetensors", "f32", b"\x00" + st32)
    seed("safetensors", "bf16", b"\x00" + safetensors(tensors, "BF16"))
    seed("safetensors", "index", b"\x01" + json.dumps(
        {"metadata": {"total_size": 8},
         "weight_map": {"w": "model-00001-of-00001.safetensors"}}).encode())

    seed("config", "llama", json.dumps(json.load(open("tests/data/model/llama-gqa/config.json"))))
    for name in ("qwen2-bias-tied", "qwen3-qknorm", "llama3-rope-tied", "mistral-headdim"):
        with open(os.path.join("tests/data/model", name, "config.json")) as f:
            seed("config", name, f.read())

    with tempfile.TemporaryDirectory() as tmp:
        m = os.path.join(tmp, "m")
        os.makedirs(m)
        with open(os.path.join(m, "model.safetensors"), "wb") as f:
            f.write(st32)
        with open(os.path.join(m, "config.json"), "w") as f:
            json.dump(cfg, f)
        g = os.path.join(tmp, "m.gguf")
        subprocess.run([cli, "convert", "-m", m, "-o", g], check=True, capture_output=True)
        model = open(g, "rb").read()
        seed("gguf", "model", model)
        # hostile sizes: a billion layers, a 2^28-wide embedding (u32 values)
        for key, val in ((b"llama.block_count", 10**9), (b"llama.embedding_length", 1 << 28)):
            j = model.find(key) + len(key)
            assert struct.unpack("<I", model[j:j + 4])[0] == 4  # GGUF_TYPE_UINT32
            seed("gguf", "hostile_" + key.decode().split(".")[-1],
                 model[:j + 4] + struct.pack("<I", val) + model[j + 8:])
        subprocess.run([cli, "convert", "-m", m, "-o", g, "--type", "f16"], check=True,
                       capture_output=True)
        seed("gguf", "model_f16", open(g, "rb").read())
        subprocess.run([cli, "convert", "-m", "tests/data/tokenizer/tiny_bpe", "-o", g,
                        "--vocab-only"], check=True, capture_output=True)
        seed("gguf", "vocab_bpe", open(g, "rb").read())

    for name in ("tiny_bpe", "tiny_spm"):
        d = os.path.join("tests/data/tokenizer", name)
        tj = open(os.path.join(d, "tokenizer.json"), "rb").read()
        tc = open(os.path.join(d, "tokenizer_config.json"), "rb").read()
        seed("tokenizer_json", name, tj + b"\x00" + tc)
        seed("tokenizer_json", name + "_no_config", tj)

    lines = [l for l in open("tests/data/tokenizer/corpus.txt", encoding="utf-8").read().split("\n") if l][:6]
    for i, l in enumerate(lines):
        seed("tokenize", "text%d" % i, bytes([i * 37 % 256]) + l.encode("utf-8"))
    seed("tokenize", "special", b"\x0c<|im_start|>user\n<s></s> \xe2\x96\x81x\xff\xfe")

    seed("chat", "chatml", "chatml\0system\0Be brief.\0user\0Hello\0assistant\0Hi!\0user\0Again")
    seed("chat", "auto", "auto\0user\0What is 2+2?")
    seed("chat", "bad_role", "llama3\0tool\0x\0user\0")

    data = [{"index": i, "input": "The secret number is %d. What is it?" % (1000 + i),
             "outputs": [str(1000 + i)], "others": {"depth": 50 * i, "target_length": 64},
             "truncation": None, "length": 20} for i in range(2)]
    seed("niah_jsonl", "data", "".join(json.dumps(d) + "\n" for d in data))
    seed("niah_jsonl", "pred", json.dumps({"index": 0, "response": "1000", "outputs": ["1000"],
                                           "others": {"depth": 0}, "length": 9}) + "\n" +
         '{"index": 1, "resp')

    # LongBench data rows (byte 0: even trec, odd hotpotqa)
    for b0, name, k in ((0, "trec", 2), (1, "hotpotqa", 1)):
        with open(os.path.join("tests/data/longbench/data", name + ".jsonl"), "rb") as f:
            rows = f.read().split(b"\n")[:k]
        seed("longbench_jsonl", name, bytes([b0]) + b"".join(r + b"\n" for r in rows))

    seed("cli_flags", "budget", "--method\0h2o\0--num-recent\0008\0--num-heavy\00016")
    seed("cli_flags", "ratios", "--method\0kvcVK+maxpool\0--recent-ratio\0000.05\0--heavy-ratio\0000.1")
    seed("cli_flags", "cache_ratio", "--method\0snapkv\0--num-recent\00016\0--cache-ratio\0000.1\0--gqa-mode\0per-query-head\0--streaming")
    seed("cli_flags", "lists", "1,2,3\0000.02,0.05\0--cache-max-tokens\0004096\0--no-decode-evict")


if __name__ == "__main__":
    main()
