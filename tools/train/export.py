"""Export a kvp-mini checkpoint as an HF Llama folder (F16 safetensors)."""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvp_model  # noqa: E402

_DT = {"F16": (np.float16, 2), "F32": (np.float32, 4)}


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> float tensor, written as F16 in name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().float().cpu().numpy().astype("<f2")
        b = a.tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # keeps the data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, _ = _DT[info["dtype"]]
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).reshape(info["shape"]).astype(np.float32))
    return out


def export(model, out_dir):
    cfg = model.cfg
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), kvp_model.hf_state_dict(model),
                      {"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg.to_hf(), f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": False,
                   "max_new_tokens": 64}, f, indent=2)
        f.write("\n")


def load(out_dir):
    """The exported model, F16 weights widened to float32."""
    with open(os.path.join(out_dir, "config.json")) as f:
        cfg = kvp_model.Config.from_hf(json.load(f))
    m = kvp_model.Model(cfg)
    kvp_model.load_hf_state_dict(m, read_safetensors(os.path.join(out_dir, "model.safetensors")))
    m.eval()
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ckpt", required=True, help="checkpoint written by train.py")
    ap.add_argument("--out", default="models/kvp-mini")
    a = ap.parse_args()
    ck = torch.load(a.ckpt)
    m = kvp_model.Model(kvp_model.Config.from_hf(ck["cfg"]))
    m.load_state_dict(ck["model"])
    export(m, a.out)
    print("exported step", ck["step"], "to", a.out)


if __name__ == "__main__":
    main()
