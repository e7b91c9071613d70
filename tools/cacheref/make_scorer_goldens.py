"""Goldens for the standalone scorer kvp_score_tokens (one head, one update).

Random attention problems (causal prefill blocks, decode-like blocks,
blocks with exactly duplicated keys/values so that scores tie exactly,
peaks at the candidate edges for pooling) x every scoring rule x windows
(1, a few rows, all, larger than the prompt, 0) x budgets. The inputs are
stored as float32 values, the expected scores and kept indices come from
cacheref.py in float64. `margin` is the relative score gap at the
selection boundary (see cacheref.choose); the C test compares kept indices
where it is >= 1e-4.

usage: /usr/bin/python3 tools/cacheref/make_scorer_goldens.py [out.json]
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cacheref  # noqa: E402

METHODS = ["full", "sink", "h2o", "tova", "snapkv", "snapkv_avgpool", "kvcV",
           "kvcV_p1", "kvcK", "kvcVK", "kvcVK_no_cross", "kvcK+maxpool",
           "kvcVK+avgpool", "obcV"]


def problem(rng, kind):
    d = 4
    if kind == "causal":
        n_q, n_kv = 12, 12
    elif kind == "decode_block":
        n_q, n_kv = 3, 14
    elif kind == "ties":
        n_q, n_kv = 4, 13
    else:  # edges: strong peaks at the first and last key
        n_q, n_kv = 5, 16
    q = rng.standard_normal((n_q, d)) * 0.8
    k = rng.standard_normal((n_kv, d))
    v = rng.standard_normal((n_kv, d))
    if kind == "ties":
        # duplicate keys and values: equal columns, exactly equal scores
        for a, b in ((1, 2), (5, 9), (6, 7), (10, 11)):
            k[b], v[b] = k[a], v[a]
    if kind == "edges":
        k[0] = q.mean(0) * 3
        k[n_kv - 1] = q.mean(0) * 3
    q, k, v = (x.astype(np.float32).astype(np.float64) for x in (q, k, v))
    z = (q @ k.T / math.sqrt(d)).astype(np.float32).astype(np.float64)
    base = n_kv - n_q
    masked = z.copy()
    if kind != "ties":
        for i in range(n_q):
            masked[i, base + i + 1:] = -np.inf
    a = np.exp(masked - masked.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    a = a.astype(np.float32).astype(np.float64)
    o = (a @ v).astype(np.float32).astype(np.float64)
    return dict(attn=a, logits=z, values=v, outputs=o, n_q=n_q, n_kv=n_kv,
                head_dim=d)


def scores_of(m, P, window):
    n_q, n_kv = P["n_q"], P["n_kv"]
    if m["kind"] != "scored":
        return np.zeros(n_kv)
    rows = (slice(0, n_q) if window <= 0 or window > n_q
            else slice(n_q - window, n_q))
    A, Z, V, O = P["attn"][rows], P["logits"][rows], P["values"], P["outputs"][rows]
    s = np.zeros(n_kv)
    if m["attn"]:
        sattn = (A ** m["p"]).sum(0)
        if m["vnorm"]:
            vn = np.abs(V).sum(1) if m["p"] == 1 else (V ** 2).sum(1)
            s = sattn * vn
        else:
            s = sattn
    if m["key"]:
        v2 = (V ** 2).sum(1)
        vo = O @ V.T
        o2 = (O ** 2).sum(1)
        t = (A * Z) ** 2 * (v2[None, :] + o2[:, None] - 2 * vo)
        if m["cross"]:
            t = t + 2 * A ** 2 * Z * (v2[None, :] - vo)
        s = s + t.sum(0)
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/cache/scorer.json"
    rng = np.random.default_rng(7)
    cases, problems = [], {}
    for kind in ("causal", "decode_block", "ties", "edges"):
        P = problem(rng, kind)
        for name in METHODS:
            m = cacheref.parse_method(name)
            for window in (1, 3, 0, P["n_q"], P["n_q"] + 5):
                s = scores_of(m, P, window)
                sels = []
                for (r, h, sink) in ((2, 4, 0), (0, 5, 0), (3, 0, 0),
                                     (20, 20, 0), (2, 6, 2), (1, 3, 7)):
                    if m["kind"] == "full":
                        keep, margin = list(range(P["n_kv"])), math.inf
                    else:
                        keep, margin = cacheref.choose(
                            s if m["kind"] == "scored" else None, P["n_kv"], r,
                            h, h if m["kind"] == "sink" else sink, 0, m["pool"])
                    sels.append(dict(n_recent=r, n_heavy=h, num_sink=sink,
                                     kept=keep,
                                     margin=float("%.3g" % min(margin, 1e30))))
                cases.append(dict(kind=kind, method=name, window=window,
                                  scores=[float("%.9g" % x) for x in s],
                                  selections=sels))
        problems[kind] = {k: (v.ravel().tolist() if isinstance(v, np.ndarray)
                              else v) for k, v in P.items()}
    doc = cases
    with open(out, "w") as f:
        json.dump(dict(problems=problems, cases=doc), f, separators=(",", ":"))
    n_sel = sum(len(c["selections"]) for c in doc)
    low = sum(1 for c in doc for x in c["selections"] if x["margin"] < 1e-4)
    print(f"{len(doc)} scorer cases, {n_sel} selections, {low} with margin "
          f"< 1e-4")


if __name__ == "__main__":
    main()
