#!/usr/bin/env python3
"""Independent reference for `kvprune needle eval` (RULER's string_match_all).

Usage: string_match_all.py SAVE_DIR [--write]

For every SAVE_DIR/<task>/<experiment>/ folder it scores pred.jsonl the way
RULER does and prints {task: {experiment: score, ..., "_samples": {...}}} as
JSON; an experiment folder without pred.jsonl (or with an empty one) scores
-1, a torn last line is skipped, and "_samples" gives each experiment's
lines scored, expected (run.json's "samples", else the task's most) and
whether it is complete. With --write it also writes <task>/result.json with
json.dump(result, f, indent=4).
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
    """(score, lines scored, torn last line number or 0). A last line without
    a newline that is not a whole JSON object is what a killed writer
    leaves: it is skipped. An empty file scores -1."""
    preds, refs = [], []
    torn = 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        if not line.strip(" \t\r"):
            continue
        last = no == len(lines)  # no newline after it
        try:
            d = json.loads(line)
        except ValueError:
            if last:
                torn = no
                break
            raise
        if not isinstance(d, dict):
            if last:
                torn = no
                break
            raise ValueError("%s:%d: expected a JSON object" % (path, no))
        p = d["response"] if "response" in d else d["pred"]
        preds.append(postprocess_pred(p))
        refs.append([str(r) for r in d["outputs"]])
    if not preds:
        return -1, 0, torn
    return string_match_all(preds, refs), len(preds), torn


def recorded_samples(exp_dir):
    """The sample count `kvprune needle pred` recorded (run.json), or 0."""
    try:
        with open(os.path.join(exp_dir, "run.json")) as f:
            n = json.load(f).get("samples")
        return n if isinstance(n, int) and n > 0 else 0
    except (OSError, ValueError, AttributeError):
        return 0


def scan(save_dir):
    """{task: result} where result is what result.json holds: scores by
    experiment folder, then "_samples" with each one's coverage."""
    out = {}
    for task in sorted(os.listdir(save_dir)):
        tdir = os.path.join(save_dir, task)
        if task.startswith(".") or not os.path.isdir(tdir):
            continue
        exps = sorted(e for e in os.listdir(tdir)
                      if not e.startswith(".") and os.path.isdir(os.path.join(tdir, e)))
        if not exps:
            continue
        scores, cover = {}, {}
        for e in exps:
            p = os.path.join(tdir, e, "pred.jsonl")
            score, n, torn = score_file(p) if os.path.isfile(p) else (-1, 0, 0)
            scores[e] = score
            cover[e] = {"scored": n, "expected": recorded_samples(os.path.join(tdir, e)),
                        "torn": torn}
        most = max(c["scored"] for c in cover.values())
        samples = {}
        for e in exps:
            c = cover[e]
            expected = c["expected"] or most
            samples[e] = {"scored": c["scored"], "expected": expected,
                          "complete": c["scored"] > 0 and c["scored"] >= expected
                          and not c["torn"]}
        result = dict(scores)
        result["_samples"] = samples
        out[task] = result
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
