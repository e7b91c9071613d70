"""End-to-end goldens: the fixture models of make_model_fixtures.py run by
llama_ref.py with the pruning cache, for every method x budget kind x
decode-evict x head mode (plus streaming and chunked prefill cases).

Per configuration it stores the greedy ids (16 steps, EOS ignored), the
kept positions after the prefill and at the end (hex bit masks per layer
and stream), the logits of the first and the last step, `min_margin` (the
smallest relative score gap at any selection boundary, see cacheref.choose)
and `gaps` (each step's top-1 minus top-2 logit). The C test demands equal
selections and ids where min_margin >= 1e-4, and stops comparing ids at
the first step whose gap is below 1e-3 (float32 vs float64 could flip that
choice, and everything after it legitimately differs).

tests/data/cache/tiny-*.alloc.golden.json holds the same for the budget
allocations (head-adaptive, pyramid, both; docs/cache.md, "Budget
allocation").

usage: /usr/bin/python3 tools/cacheref/make_model_goldens.py [data_dir [.golden|.alloc.golden]]
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cacheref  # noqa: E402
import llama_ref  # noqa: E402

STEPS = 16
BUDGETS = [
    dict(budget="abs", num_recent=6, num_heavy=10),
    dict(budget="ratio", recent_ratio=0.125, heavy_ratio=0.25),
    dict(budget="cache_ratio", num_recent=6, cache_ratio=0.4),
]
PROMPTS = {"tiny-gqa": 40, "tiny-mha": 36}


def configs():
    out = []
    for name in cacheref.method_names():
        for b in (BUDGETS if name != "full" else BUDGETS[:1]):
            for de in (True, False):
                for gqa in ("q", "kv"):
                    c = dict(method=name, decode_evict=de, gqa=gqa,
                             streaming=False, chunk=0)
                    c.update(b)
                    out.append(c)
    for name in ("h2o", "kvcVK", "snapkv"):
        c = dict(method=name, decode_evict=True, gqa="kv", streaming=True,
                 chunk=0)
        c.update(BUDGETS[0])
        out.append(c)
    for name in ("full", "h2o", "kvcVK", "tova"):
        for chunk in (8, 64):
            c = dict(method=name, decode_evict=True, gqa="q", streaming=False,
                     chunk=chunk)
            c.update(BUDGETS[0])
            out.append(c)
    # half-precision K/V: the reference rounds K and V (float64 -> float32
    # -> f16/bf16) as the cache stores them; every configuration above has
    # float32 K/V
    for kvt in ("f16", "bf16"):
        for name in ("full", "h2o", "snapkv", "kvcVK", "tova", "sink"):
            for gqa in ("q", "kv"):
                c = dict(method=name, decode_evict=True, gqa=gqa,
                         streaming=False, chunk=0, kv_type=kvt)
                c.update(BUDGETS[0])
                out.append(c)
        c = dict(method="h2o", decode_evict=True, gqa="kv", streaming=False,
                 chunk=8, kv_type=kvt)
        c.update(BUDGETS[0])
        out.append(c)
    return out


def alloc_configs():
    out = []
    adaptive = dict(budget_alloc="adaptive", safeguard=0.2)
    pyramid = dict(layer_alloc="pyramid", pyramid_beta=4.0)

    def add(name, b, gqa, de=True, chunk=0, **kw):
        c = dict(method=name, decode_evict=de, gqa=gqa, streaming=False,
                 chunk=chunk)
        c.update(b)
        c.update(kw)
        out.append(c)
    for name in cacheref.method_names():
        for gqa in ("q", "kv"):
            for de in (True, False):
                add(name, BUDGETS[0], gqa, de, **adaptive)
            add(name, BUDGETS[1], gqa, **adaptive, **pyramid)
    for name in ("h2o", "snapkv", "kvcVK", "tova"):
        for gqa in ("q", "kv"):
            add(name, BUDGETS[2], gqa, layer_alloc="pyramid",
                pyramid_beta=20.0)
            add(name, BUDGETS[0], gqa, streaming=True, **adaptive)
    for name in ("full", "h2o", "kvcVK", "tova"):
        for chunk in (8, 64):
            add(name, BUDGETS[0], "q", chunk=chunk, **adaptive)
            add(name, BUDGETS[2], "kv", chunk=chunk, **adaptive, **pyramid)
    for kvt in ("f16", "bf16"):
        for name in ("h2o", "snapkv", "kvcVK", "sink"):
            add(name, BUDGETS[0], "kv", kv_type=kvt, **adaptive, **pyramid)
    return out


def masks(kept):
    return [[format(sum(1 << p for p in s), "x") for s in layer]
            for layer in kept]


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "tests/data/cache"
    for (fx, P), (suffix, cfgs) in ((f, a) for f in PROMPTS.items()
                                    for a in ((".golden", configs()),
                                              (".alloc.golden", alloc_configs()))):
        if len(sys.argv) > 2 and suffix != sys.argv[2]:
            continue
        model = llama_ref.Llama(os.path.join(data, fx))
        rng = np.random.default_rng(5)
        V = model.cfg["vocab_size"]
        prompt = [int(x) for x in rng.integers(3, V, size=P)]
        res, first = [], None
        for cfg in cfgs:
            cache = cacheref.Cache(cfg, model.n_layer, model.n_head,
                                   model.n_head_kv, model.hd)
            ids, logits, kept_pre, gaps = model.generate(cache, prompt, STEPS,
                                                         cfg["chunk"])
            r = dict(cfg)
            # an unchunked prefill evicts after attending, so its logits are
            # the same for every configuration: stored once; a chunked one
            # attends to a pruned cache and stores its own
            if first is None:
                first = logits[0]
            if not np.allclose(first, logits[0], rtol=1e-9, atol=1e-9):
                r["logits_first"] = [float("%.7g" % x) for x in logits[0]]
            r.update(ids=ids, after_prefill=masks(kept_pre),
                     final=masks(cache.kept()),
                     logits_last=[float("%.7g" % x) for x in logits[-1]],
                     gaps=[float("%.4g" % g) for g in gaps],
                     min_margin=float("%.3g" % min(cache.min_margin, 1e30)))
            res.append(r)
        low = sum(1 for r in res if r["min_margin"] < 1e-4)
        lowgap = sum(1 for r in res if min(r["gaps"]) < 1e-3)
        print(f"{fx}{suffix}: {len(res)} configurations, {low} with selection margin "
              f"< 1e-4, {lowgap} with a logit gap < 1e-3 somewhere")
        with open(os.path.join(data, fx + suffix + ".json"), "w") as f:
            json.dump(dict(model=fx, prompt=prompt, steps=STEPS,
                           logits_first=[float("%.7g" % x) for x in first],
                           configs=res),
                      f, separators=(",", ":"))


if __name__ == "__main__":
    main()
