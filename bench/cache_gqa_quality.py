#!/usr/bin/python3
"""Quality of the two cache head modes on a trained model: for text prompts
cut from a folder of .txt files, the greedy continuation of each pruned
method is compared with the full cache's (`kvprune compare --json`), in
per-query-head and in per-kv-head mode. Reports, per method and mode, the
mean number of leading tokens identical to the full cache's output and
the fraction of positions that agree.

usage: bench/cache_gqa_quality.py KVPRUNE MODEL TEXT_DIR [--prompts 12]
       [--tokens 1024] [--new 32] [--ratio 0.1]
"""
import argparse
import json
import os
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kvprune")
    ap.add_argument("model")
    ap.add_argument("text_dir")
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--chars", type=int, default=4000)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--ratio", type=float, default=0.1)
    ap.add_argument("--methods", default="h2o,tova,snapkv,kvcV,kvcVK")
    a = ap.parse_args()
    files = sorted(f for f in os.listdir(a.text_dir) if f.endswith(".txt"))
    step = max(1, len(files) // a.prompts)
    texts = []
    for f in files[::step][:a.prompts]:
        with open(os.path.join(a.text_dir, f), encoding="utf-8") as fh:
            t = fh.read()
        texts.append(t[len(t) // 3: len(t) // 3 + a.chars])
    methods = a.methods.split(",")
    stats = {}
    n_prompt_total = 0
    for text in texts:
        for mode in ("per-query-head", "per-kv-head"):
            out = subprocess.run(
                [a.kvprune, "compare", "-m", a.model, "--prompt", text,
                 "--methods", "full," + a.methods,
                 "--recent-ratio", str(a.ratio / 8),
                 "--heavy-ratio", str(a.ratio - a.ratio / 8),
                 "-n", str(a.new), "--ignore-eos", "--json", "-t", "1",
                 "--gqa-mode", mode],
                check=True, capture_output=True, text=True).stdout
            doc = json.loads(out)
            if mode == "per-query-head":
                n_prompt_total += doc["n_prompt"]
            full = doc["results"][0]["ids"]
            for r in doc["results"][1:]:
                s = stats.setdefault((r["method"], mode), [0, 0, 0, 0])
                s[0] += r["same_prefix_as_first"]
                s[1] += sum(1 for x, y in zip(r["ids"], full) if x == y)
                s[2] += len(full)
                s[3] += 1
    print(f"{len(texts)} prompts, mean {n_prompt_total / len(texts):.0f} tokens, "
          f"{a.new} new tokens, cache {a.ratio:.0%} of the prompt")
    print("| method | head mode | same prefix as full (mean tokens) | "
          "positions equal to full |")
    print("|---|---|---:|---:|")
    for m in methods:
        for mode in ("per-query-head", "per-kv-head"):
            s = stats[(m, mode)]
            print(f"| {m} | {mode} | {s[0] / s[3]:.1f} | {s[1] / s[2]:.1%} |")


if __name__ == "__main__":
    main()
