#!/usr/bin/env python3
"""Pooled needle accuracy per (method, cache ratio, allocation) over tasks.

usage: bench/niah_alloc_summary.py SAVE_DIR TASK...

Reads SAVE_DIR/<task>/<experiment>/pred.jsonl of `kvprune needle pred`
(bench/niah_alloc.sh writes one task per haystack x length), scores every
sample with RULER's string_match_all (tools/eval/string_match_all.py) and
prints a Markdown table: one row per method, ratio and allocation, a column
per task (accuracy, %), the pooled accuracy over all the tasks' samples with
n and its standard error sqrt(p (1 - p) / n), and, for the non-uniform
allocations, the paired count against uniform on the same prompts: samples
only this allocation answers / samples only uniform answers.
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "eval"))
import string_match_all as ref  # noqa: E402
from make_goldens import parse_exp, METHOD_ORDER, ALLOC_ORDER  # noqa: E402


def sample_scores(path):
    """{index: fraction of references found} of one pred.jsonl."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            p = ref.postprocess_pred(d["response"] if "response" in d else d["pred"])
            refs = [str(r) for r in d["outputs"]]
            out[d["index"]] = sum(1.0 if r.lower() in p.lower() else 0.0 for r in refs) / len(refs)
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    save_dir, tasks = sys.argv[1], sys.argv[2:]
    # (label, ratio, alloc) -> {task: {index: score}}
    cells = {}
    for task in tasks:
        tdir = os.path.join(save_dir, task)
        for e in sorted(os.listdir(tdir)):
            p = os.path.join(tdir, e, "pred.jsonl")
            if not os.path.isfile(p):
                continue
            method, ratio, nde, alloc = parse_exp(e)
            label = method + (" no_decode_evict" if nde else "")
            cells.setdefault((label, ratio, alloc), {})[task] = sample_scores(p)

    def key(k):
        m = k[0].split(" ")[0]
        return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), k[0],
                -1 if k[1] is None else k[1],
                ALLOC_ORDER.index(k[2]) if k[2] in ALLOC_ORDER else len(ALLOC_ORDER), k[2])

    head = ["method", "ratio", "alloc"] + tasks + ["pooled % (n)", "SE", "vs uniform +/-"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|")
    for k in sorted(cells, key=key):
        label, ratio, alloc = k
        row = [label, "-" if ratio is None else "%g" % ratio, "-" if ratio is None else alloc]
        total, n = 0.0, 0
        for task in tasks:
            s = cells[k].get(task)
            if not s:
                row.append("")
                continue
            row.append("%.1f" % (100 * sum(s.values()) / len(s)))
            total += sum(s.values())
            n += len(s)
        p = total / n if n else float("nan")
        row.append("%.1f (%d)" % (100 * p, n))
        row.append("%.1f" % (100 * math.sqrt(p * (1 - p) / n)) if n else "")
        base = cells.get((label, ratio, "uniform"))
        if alloc != "uniform" and ratio is not None and base:
            wins = losses = 0
            for task, s in cells[k].items():
                for i, v in s.items():
                    u = base.get(task, {}).get(i)
                    if u is None:
                        continue
                    wins += v == 1 and u < 1
                    losses += v < 1 and u == 1
            row.append("+%d / -%d" % (wins, losses))
        else:
            row.append("")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
