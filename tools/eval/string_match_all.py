#!/usr/bin/env python3
"""Independent reference for `kvprune needle eval` (RULER's string_match_all).

Usage: string_match_all.py SAVE_DIR [--write]

For every SAVE_DIR/<task>/<experiment>/ folder it scores pred.jsonl the way
RULER does and prints {task: {experiment: score}} as JSON; an experiment
folder without pred.jsonl scores -1. With --write it also writes
<task>/result.json with json.dump(scores, f, indent=4).
"""
import json
import os
import re
import sys


def postprocess_pred(predict_str):
    predict_str = predict_str.strip()
    predict_str = re.sub(r"[\x00-\x1f]", "\n", predict_str).strip()
    return predict_str


def string_match_all(preds, refs):
    score = sum([sum([1.0 if r.lower() in pred.lower() else 0.0 for r in ref]) / len(ref)
                 for pred, ref in zip(preds, refs)]) / len(preds) * 100
    return round(score, 2)


def score_file(path):
    preds, refs = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            p = d["response"] if "response" in d else d["pred"]
            preds.append(postprocess_pred(p))
            refs.append([str(r) for r in d["outputs"]])
    return string_match_all(preds, refs)


def scan(save_dir):
    out = {}
    for task in sorted(os.listdir(save_dir)):
        tdir = os.path.join(save_dir, task)
        if task.startswith(".") or not os.path.isdir(tdir):
            continue
        exps = sorted(e for e in os.listdir(tdir)
                      if not e.startswith(".") and os.path.isdir(os.path.join(tdir, e)))
        if not exps:
            continue
        scores = {}
        for e in exps:
            p = os.path.join(tdir, e, "pred.jsonl")
            scores[e] = score_file(p) if os.path.isfile(p) else -1
        out[task] = scores
    return out


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    res = scan(sys.argv[1])
    if "--write" in sys.argv[2:]:
        for task, scores in res.items():
            with open(os.path.join(sys.argv[1], task, "result.json"), "w") as f:
                json.dump(scores, f, indent=4)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
