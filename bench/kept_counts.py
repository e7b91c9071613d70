#!/usr/bin/env python3
"""Kept tokens per cache stream after the prompt, from `--dump-kept` files.

usage: bench/kept_counts.py LABEL=FILE...

FILE is the JSON `kvprune generate --dump-kept FILE` writes
({"after_prefill": [layer][stream][positions], ...}). Prints a Markdown
table: one row per layer, one column per file with the kept count of each
stream of that layer ("a/b" for two streams) and the layer's total, then
the total over the layers: where a head-adaptive or pyramid allocation
moves the budget.
"""
import json
import sys


def main():
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        raise SystemExit(__doc__)
    runs = []
    for a in sys.argv[1:]:
        label, path = a.split("=", 1)
        with open(path, encoding="utf-8") as f:
            runs.append((label, json.load(f)["after_prefill"]))
    n_layers = max(len(k) for _, k in runs)
    print("| layer | " + " | ".join("%s: per stream (total)" % l for l, _ in runs) + " |")
    print("|---:|" + "---:|" * len(runs))
    for layer in range(n_layers):
        cells = []
        for _, kept in runs:
            if layer >= len(kept):
                cells.append("")
                continue
            counts = [len(s) for s in kept[layer]]
            cells.append("%s (%d)" % ("/".join(str(c) for c in counts), sum(counts)))
        print("| %d | %s |" % (layer, " | ".join(cells)))
    print("| all | " + " | ".join("%d" % sum(len(s) for layer in k for s in layer)
                                  for _, k in runs) + " |")


if __name__ == "__main__":
    main()
