#!/usr/bin/env python3
"""Regenerates the eval test fixtures and their expected results.

    /usr/bin/python3 tools/eval/make_goldens.py   (from the repository root)

Writes tests/data/eval/sweep/<task>/<experiment>/pred.jsonl (hand-made
predictions), tests/data/eval/expected/<task>.result.json (what the
reference string_match_all.py gives for them, json.dump(indent=4)),
tests/data/eval/expected/sweep_alloc.table.txt (the table `needle eval`
prints for a sweep over budget allocations, laid out here from the scores
as docs/needle.md describes it) and tests/data/eval/pyfloat.tsv (hex double,
Python round(x, 2) as hex, repr).
"""
import json
import math
import os
import random
import re
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


# The cache methods in the library's table order (the table's row order).
METHOD_ORDER = (["full", "sink", "h2o", "h2o_fullhist", "tova", "snapkv", "snapkv_avgpool"] +
                [b + s for b in ("kvcV", "kvcV_p1", "kvcK", "kvcVK", "kvcVK_no_cross")
                 for s in ("", "+tova", "+maxpool", "+avgpool", "_fullhist")])
ALLOC_ORDER = ["uniform", "adaptive", "pyramid", "adaptive+pyramid"]
NUM = r"[0-9][0-9.e+-]*"
ALLOC_PART = re.compile(r"(adaptive(_sg%s)?|pyramid(_beta%s)?)$" % (NUM, NUM))


def is_alloc_tag(tag):
    parts = tag.split("+")
    if not all(ALLOC_PART.match(p) for p in parts):
        return False
    kinds = [p.split("_")[0] for p in parts]
    if len(set(kinds)) != len(kinds):
        return False
    for p in parts:
        if "_" in p:
            num = p.split("_", 1)[1].lstrip("sgbeta")
            try:
                if not math.isfinite(float(num)):
                    return False
            except ValueError:
                return False
    return True


def split_ratio(name):
    nde = name.endswith("-no_decode_evict") and len(name) > len("-no_decode_evict")
    if nde:
        name = name[:-len("-no_decode_evict")]
    i = name.rfind("-cr")
    if i >= 0:
        try:
            r = float(name[i + 3:])
            if math.isfinite(r):
                return name[:i], r, nde
        except ValueError:
            pass
    return name, None, nde


def parse_exp(name):
    """(method, ratio or None, no_decode_evict, alloc) of an experiment folder."""
    head, _, tag = name.rpartition("-")
    if head and is_alloc_tag(tag):
        m, r, nde = split_ratio(head)
        if r is not None:
            return m, r, nde, tag
    m, r, nde = split_ratio(name)
    return m, r, nde, "uniform"


def table(task, result):
    """The text of `needle eval`'s table for a task with allocations."""
    exps = [e for e in result if e != "_samples"]
    cover = result["_samples"]
    parsed = {e: parse_exp(e) for e in exps}
    label = {e: parsed[e][0] + (" no_decode_evict" if parsed[e][2] else "") for e in exps}

    def rank(e):
        m = parsed[e][0]
        a = parsed[e][3]
        return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), label[e],
                ALLOC_ORDER.index(a) if a in ALLOC_ORDER else len(ALLOC_ORDER), a)
    rows = []
    for e in sorted(exps, key=rank):
        key = (label[e], parsed[e][3])
        if key not in rows:
            rows.append(key)
    cols = sorted({parsed[e][1] for e in exps if parsed[e][1] is not None})
    w0 = max([len("method")] + [len(r[0]) for r in rows])
    w1 = max([len("alloc")] + [len(r[1]) for r in rows])
    out = "task %s (string_match_all, %%)\n" % task
    out += "method".ljust(w0) + "  " + "alloc".ljust(w1)
    out += "".join("  %10s" % ("cr=%g" % c) for c in cols) + "\n"
    for lab, alloc in rows:
        ref = [e for e in exps if label[e] == lab and parsed[e][3] == alloc and parsed[e][1] is None]
        out += lab.ljust(w0) + "  " + ("-" if ref else alloc).ljust(w1)
        for c in cols:
            hit = ref or [e for e in exps if label[e] == lab and parsed[e][3] == alloc
                          and parsed[e][1] == c]
            if not hit:
                out += "  %10s" % "-"
                continue
            e = hit[0]
            v = result[e]
            cell = "missing" if v == -1 else "%.2f%s" % (v, "" if cover[e]["complete"] else "*")
            out += "  %10s" % cell
        out += "\n"
    n = max(cover[e]["expected"] for e in exps)
    assert all(cover[e]["complete"] for e in exps)
    out += "every score covers its %d samples\n" % n
    return out


def allocations():
    """A sweep over budget allocations: one fixed set of 4 answers per
    sample, each experiment answering a different subset right."""
    t = "sweep_alloc"
    refs = ["1234567", "7654321", "1111111", "2222222"]

    def rows(right):
        return [(refs[i] if i in right else "no", [refs[i]]) for i in range(4)]
    write(t, "full", rows({0, 1, 2, 3}))
    names = [
        ("snapkv-cr0.02-no_decode_evict", {0}),
        ("snapkv-cr0.02-no_decode_evict-adaptive", {0, 1}),
        ("snapkv-cr0.02-no_decode_evict-adaptive+pyramid", {0, 1, 2}),
        ("snapkv-cr0.05-no_decode_evict", {0, 1, 2}),
        ("snapkv-cr0.05-no_decode_evict-adaptive", {0, 1, 2, 3}),
        ("snapkv-cr0.05-no_decode_evict-adaptive+pyramid", {1, 2, 3}),
        ("h2o-cr0.05-no_decode_evict-adaptive_sg0.5", {2}),
        ("h2o-cr0.05-no_decode_evict-pyramid_beta10", set()),
        ("h2o-cr0.05-no_decode_evict-pyramid", {3}),
        ("kvcV+tova-cr0.1-adaptive+pyramid", {0, 3}),
        ("kvcV+tova-cr0.1", {1}),
    ]
    for name, right in names:
        write(t, name, rows(right))
        with open(os.path.join(SWEEP, t, name, "run.json"), "w") as f:
            json.dump({"task": t, "experiment": name, "samples": 4}, f, indent=4)


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
    allocations()
    pyfloat()
    depth_grid()
    exp_dir = os.path.join(ROOT, "expected")
    os.makedirs(exp_dir, exist_ok=True)
    for task, scores in ref.scan(SWEEP).items():
        with open(os.path.join(exp_dir, task + ".result.json"), "w") as f:
            json.dump(scores, f, indent=4)
    res = ref.scan(SWEEP)
    with open(os.path.join(exp_dir, "sweep_alloc.table.txt"), "w") as f:
        f.write(table("sweep_alloc", res["sweep_alloc"]))
    print(json.dumps(ref.scan(SWEEP)["niah_single"], indent=1))


if __name__ == "__main__":
    main()
