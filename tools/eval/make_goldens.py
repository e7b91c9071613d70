#!/usr/bin/env python3
"""Regenerates the eval test fixtures and their expected results.

    /usr/bin/python3 tools/eval/make_goldens.py   (from the repository root)

Writes tests/data/eval/sweep/<task>/<experiment>/pred.jsonl (hand-made
predictions), tests/data/eval/expected/<task>.result.json (what the
reference string_match_all.py gives for them, json.dump(indent=4)) and
tests/data/eval/pyfloat.tsv (hex double, Python round(x, 2) as hex, repr).
"""
import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import string_match_all as ref  # noqa: E402

ROOT = os.path.join("tests", "data", "eval")
SWEEP = os.path.join(ROOT, "sweep")


def write(task, exp, rows):
    d = os.path.join(SWEEP, task, exp)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "pred.jsonl"), "w", encoding="utf-8") as f:
        for i, (resp, outs) in enumerate(rows):
            line = {"index": i, "response": resp, "outputs": outs,
                    "others": {"depth": [0, 50, 100][i % 3], "target_length": [512, 1024][i % 2]},
                    "truncation": None, "length": 500 + i}
            f.write(json.dumps(line, ensure_ascii=(i % 2 == 0)) + "\n")


def hand_made():
    t = "niah_single"
    write(t, "full", [("The secret number is 1234567.", ["1234567"]),
                      ("  7654321  ", ["7654321"]),
                      ("1111111", ["1111111"])])
    # Case, control characters, empty and unicode whitespace.
    write(t, "h2o-cr0.02", [
        ("The Key is ABC-Def", ["abc-def"]),
        ("", ["1234567"]),
        ("\x00\x01 1234\x1f567 \x1c", ["1234567", "\n567"]),
        ("\u00a0\u3000 ÉCOLE Σ 42\u2028", ["école", "σ 42"]),
        ("x\ty", ["x\ny"]),
        ("tab\x7fdel", ["\x7fdel"]),
    ])
    write(t, "snapkv-cr0.05-no_decode_evict", [
        ("values: 1, 2 and 3", ["1", "2", "3"]),
        ("values: 1 and 3", ["1", "2", "3"]),
        ("nothing", ["1", "2", "3"]),
    ])
    write(t, "kvcVK+maxpool-cr0.1", [("İstanbul ΆΈ Ѐ Ӂ", ["i̇stanbul άέ ѐ ӂ"]), ("no", ["yes"])])
    # What interrupted runs leave: an empty file, 2 of 4 samples, and 2
    # lines plus a torn third (run.json says how many there should be).
    write(t, "kvcK-cr0.1", [])
    write(t, "h2o-cr0.05", [("1234567", ["1234567"]), ("no", ["7654321"])])
    write(t, "kvcV-cr0.1", [("1234567", ["1234567"]), ("7654321", ["7654321"])])
    with open(os.path.join(SWEEP, t, "kvcV-cr0.1", "pred.jsonl"), "a") as f:
        f.write('{"index": 2, "response": "12')
    for e in ("kvcK-cr0.1", "h2o-cr0.05", "kvcV-cr0.1"):
        with open(os.path.join(SWEEP, t, e, "run.json"), "w") as f:
            json.dump({"task": t, "experiment": e, "samples": 4}, f, indent=4)
    # An experiment that has not run yet: scores -1.
    os.makedirs(os.path.join(SWEEP, t, "tova-cr0.1"), exist_ok=True)
    with open(os.path.join(SWEEP, t, "tova-cr0.1", ".keep"), "w") as f:
        f.write("")
    # Seed-style field name `pred` instead of `response`.
    write(t, "sink-cr0.05", [])
    with open(os.path.join(SWEEP, t, "sink-cr0.05", "pred.jsonl"), "w") as f:
        f.write(json.dumps({"pred": "It is 5.", "outputs": ["5"]}) + "\n\n")
        f.write(json.dumps({"pred": "It is 6.", "outputs": [7]}))  # no final newline


def rounding():
    """Many small experiments whose means land near x.xx5 boundaries."""
    rng = random.Random(5)
    t = "rounding"
    for e in range(40):
        n = rng.choice([3, 6, 7, 8, 11, 16, 40, 60])
        rows = []
        for i in range(n):
            m = rng.choice([1, 2, 3, 4, 7, 8])
            k = rng.randint(0, m)
            outs = ["v%d" % j for j in range(m)]
            rows.append((" ".join(outs[:k]), outs))
        write(t, "m%02d-cr0.%02d" % (e, e % 10 + 1), rows)


def pyfloat():
    rng = random.Random(7)
    xs = [0.125, 0.375, 2.675, 1.005, 12.345, 66.665, 33.335, 99.995, 0.005, 0.015,
          100.0, 0.0, 1e-5, 1e16, 1234567890123456.0, 0.1, 0.05, 0.02, 1.5, 2.5,
          0.0001, 123.456, 5e-324, 1e22, 33.33333333333333, 66.66666666666667]
    for _ in range(300):
        k = rng.randint(1, 400)
        n = rng.randint(k, 400)
        xs.append(k / n * 100)
        xs.append(rng.randint(0, 100000) / 1000)
    with open(os.path.join(ROOT, "pyfloat.tsv"), "w") as f:
        for x in xs:
            f.write("%s\t%s\t%s\n" % (x.hex(), round(x, 2).hex(), repr(x)))


def depth_grid():
    import numpy as np
    with open(os.path.join(ROOT, "depth_grid.txt"), "w") as f:
        for c in range(1, 46):
            g = np.round(np.linspace(0, 100, c)).astype(int)
            f.write("%d %s\n" % (c, " ".join(str(int(x)) for x in g)))


def main():
    if os.path.isdir(SWEEP):
        shutil.rmtree(SWEEP)
    hand_made()
    rounding()
    pyfloat()
    depth_grid()
    exp_dir = os.path.join(ROOT, "expected")
    os.makedirs(exp_dir, exist_ok=True)
    for task, scores in ref.scan(SWEEP).items():
        with open(os.path.join(exp_dir, task + ".result.json"), "w") as f:
            json.dump(scores, f, indent=4)
    print(json.dumps(ref.scan(SWEEP)["niah_single"], indent=1))


if __name__ == "__main__":
    main()
