"""Goldens for the pruning cache driven with random q/k/v (no model).

For two shapes (GQA and MHA) it writes tests/data/cache/<shape>.bin (the
float32 inputs, per layer: q [T][H][d], k [T][Hkv][d], v [T][Hkv][d]) and
tests/data/cache/<shape>.json: for every method x budget kind x
decode-evict x head mode (plus streaming, chunked-prefill, multi-token
decode block and alias cases)
the kept positions after the prefill and at the end (hex bit masks of
absolute positions, per layer and stream), the sum of squares of every
step's outputs, the last step's outputs, and `min_margin`: the smallest
relative score gap at any selection boundary. float32 (C) and float64 (this
reference) can only disagree on a choice whose margin is within rounding,
so the C test demands identical selections where min_margin >= 1e-4 and
counts the rest (the fixtures are random, so such configurations are rare).

tests/data/cache/<shape>_alloc.json holds the same for the budget
allocations (docs/cache.md, "Budget allocation"): head-adaptive (Ada-KV)
and layer-adaptive (PyramidKV) budgets, alone and together, over the same
methods, budget kinds, head modes, decode eviction, chunked prefill and
decode blocks, on the same inputs.

usage: /usr/bin/python3 tools/cacheref/make_cache_goldens.py [out_dir]
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cacheref  # noqa: E402

SHAPES = {
    "gqa": dict(n_layer=2, n_head=4, n_head_kv=2, d=16, prompt=48, decode=16,
                seed=1234),
    "mha": dict(n_layer=2, n_head=3, n_head_kv=3, d=8, prompt=40, decode=16,
                seed=99),
}

DECODE_BLOCKS = [1, 1, 1, 1, 1, 3, 1, 1, 4, 1, 1]

BUDGETS = [
    dict(budget="abs", num_recent=6, num_heavy=10),
    dict(budget="ratio", recent_ratio=0.125, heavy_ratio=0.25),
    dict(budget="cache_ratio", num_recent=6, cache_ratio=0.4),
]


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
    extra = [("h2o", 0), ("kvcVK", 0), ("snapkv", 0), ("kvcK+maxpool", 0)]
    for name, _ in extra:
        for gqa in ("q", "kv"):
            c = dict(method=name, decode_evict=True, gqa=gqa, streaming=True,
                     chunk=0)
            c.update(BUDGETS[0])
            out.append(c)
    # chunked prefill: chunks smaller than the prompt and one chunk >= prompt
    for name in ("full", "h2o", "tova", "snapkv", "kvcV", "kvcK", "kvcVK",
                 "kvcVK_fullhist", "sink", "kvcV+avgpool"):
        for chunk in (16, 7, 1000):
            for gqa in ("q", "kv"):
                c = dict(method=name, decode_evict=True, gqa=gqa,
                         streaming=False, chunk=chunk)
                c.update(BUDGETS[0])
                out.append(c)
    # decode blocks of several tokens after single steps: the single steps
    # leave the C cache's rows out of position order, the blocks then
    # evict several tokens at once
    for name in ("h2o", "tova", "snapkv", "kvcVK", "kvcK+maxpool", "sink"):
        for gqa in ("q", "kv"):
            c = dict(method=name, decode_evict=True, gqa=gqa, streaming=False,
                     chunk=0, decode_blocks=DECODE_BLOCKS)
            c.update(BUDGETS[0])
            out.append(c)
    for alias in ("obcV", "obcVK+tova", "obcK_fullhist"):
        c = dict(method=alias, decode_evict=True, gqa="q", streaming=False,
                 chunk=0)
        c.update(BUDGETS[0])
        out.append(c)
    # half-precision K/V (the reference rounds K and V as the cache stores
    # them, so the tolerances stay those of float32); every configuration
    # above has float32 K/V
    for kvt in ("f16", "bf16"):
        for name in ("full", "h2o", "tova", "snapkv", "kvcV", "kvcK", "kvcVK",
                     "kvcVK+maxpool", "kvcV_fullhist", "sink"):
            for gqa in ("q", "kv"):
                for b in BUDGETS[:2]:
                    c = dict(method=name, decode_evict=True, gqa=gqa,
                             streaming=False, chunk=0, kv_type=kvt)
                    c.update(b)
                    out.append(c)
        for name, chunk, blocks in (("h2o", 16, None), ("kvcVK", 7, None),
                                    ("snapkv", 0, DECODE_BLOCKS),
                                    ("kvcK+maxpool", 0, DECODE_BLOCKS)):
            c = dict(method=name, decode_evict=True, gqa="kv",
                     streaming=False, chunk=chunk, kv_type=kvt)
            if blocks:
                c["decode_blocks"] = blocks
            c.update(BUDGETS[0])
            out.append(c)
    # streaming with other sink counts (num_sink; 12 > the heavy budget of
    # 10: every heavy slot goes to the first tokens)
    for name, sinks in (("h2o", 1), ("kvcVK", 2), ("snapkv", 7), ("kvcK+maxpool", 12)):
        for gqa in ("q", "kv"):
            c = dict(method=name, decode_evict=True, gqa=gqa, streaming=True,
                     num_sink=sinks, chunk=0)
            c.update(BUDGETS[0])
            out.append(c)
    return out


def alloc_configs():
    out = []
    base = dict(decode_evict=True, streaming=False, chunk=0)

    def add(name, budget, gqa, **kw):
        c = dict(base, method=name, gqa=gqa)
        c.update(budget)
        c.update(kw)
        out.append(c)
    names = cacheref.method_names()
    adaptive = dict(budget_alloc="adaptive", safeguard=0.2)
    # head-adaptive: every method x budget kind x decode eviction x head mode
    for name in names:
        for b in (BUDGETS if name != "full" else BUDGETS[:1]):
            for de in (True, False):
                for gqa in ("q", "kv"):
                    add(name, b, gqa, decode_evict=de, **adaptive)
    # layer-adaptive alone (beta 20: the top layer keeps ~1/20 of the mean)
    # and with head-adaptive (beta 4)
    for name in names:
        for gqa in ("q", "kv"):
            add(name, BUDGETS[0], gqa, layer_alloc="pyramid", pyramid_beta=20.0)
            for b in BUDGETS:
                add(name, b, gqa, layer_alloc="pyramid", pyramid_beta=4.0,
                    **adaptive)
    # the safeguard's extremes: 0 (pure score) and 1 (uniform)
    for name in ("h2o", "snapkv", "kvcVK", "tova", "sink"):
        for alpha in (0.0, 0.5, 1.0):
            for gqa in ("q", "kv"):
                add(name, BUDGETS[0], gqa, budget_alloc="adaptive",
                    safeguard=alpha)
    # streaming sinks, chunked prefill and decode blocks
    for name in ("h2o", "kvcVK", "snapkv", "kvcK+maxpool"):
        for gqa in ("q", "kv"):
            add(name, BUDGETS[0], gqa, streaming=True, **adaptive)
    for name in ("full", "h2o", "tova", "snapkv", "kvcV", "kvcK", "kvcVK",
                 "kvcVK_fullhist", "sink", "kvcV+avgpool"):
        for chunk in (16, 7, 1000):
            for gqa in ("q", "kv"):
                add(name, BUDGETS[0], gqa, chunk=chunk, **adaptive)
                add(name, BUDGETS[2], gqa, chunk=chunk, layer_alloc="pyramid",
                    pyramid_beta=4.0, **adaptive)
    for name in ("h2o", "tova", "snapkv", "kvcVK", "kvcK+maxpool", "sink"):
        for gqa in ("q", "kv"):
            add(name, BUDGETS[0], gqa, decode_blocks=DECODE_BLOCKS, **adaptive)
    # half-precision K/V
    for kvt in ("f16", "bf16"):
        for name in ("h2o", "snapkv", "kvcVK", "kvcV_fullhist"):
            add(name, BUDGETS[1], "kv", kv_type=kvt, layer_alloc="pyramid",
                pyramid_beta=4.0, **adaptive)
    return out


def masks(kept):
    return [[format(sum(1 << p for p in s), "x") for s in layer]
            for layer in kept]


def run(shape, inputs, cfg):
    L, H, Hkv, d = shape["n_layer"], shape["n_head"], shape["n_head_kv"], shape["d"]
    P, D = shape["prompt"], shape["decode"]
    c = cacheref.Cache(cfg, L, H, Hkv, d)
    blocks = []
    chunk = cfg["chunk"] if cfg["chunk"] > 0 else P
    for s in range(0, P, chunk):
        blocks.append((s, min(chunk, P - s), P))
    t = 0
    for n in cfg.get("decode_blocks", [1] * D):
        blocks.append((P + t, n, 0))
        t += n
    assert t == D
    out_sq, after_prefill, out_last = [], None, None
    for (s, n, total) in blocks:
        c.begin(n, total)
        outs = []
        for layer in range(L):
            q, k, v = inputs[layer]
            o = c.attend(layer, q[s:s + n], k[s:s + n], v[s:s + n])
            outs.append(o)
        c.end()
        out_sq.append(float(sum((o ** 2).sum() for o in outs)))
        if s + n == P:
            after_prefill = masks(c.kept())
        out_last = np.concatenate([o[-1].ravel() for o in outs])
    res = dict(cfg)
    res.update(after_prefill=after_prefill, final=masks(c.kept()),
               out_sq=[float("%.8g" % x) for x in out_sq],
               out_last=[float("%.6g" % x) for x in out_last],
               min_margin=float("%.3g" % min(c.min_margin, 1e30)))
    return res


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/cache"
    os.makedirs(out_dir, exist_ok=True)
    for sname, shape in SHAPES.items():
        rng = np.random.default_rng(shape["seed"])
        T = shape["prompt"] + shape["decode"]
        H, Hkv, d = shape["n_head"], shape["n_head_kv"], shape["d"]
        raw, inputs = [], []
        for _ in range(shape["n_layer"]):
            # q scaled so that logits have a std of about 2: peaked but not
            # one-hot attention, hence well separated scores
            q = (0.5 * rng.standard_normal((T, H, d))).astype(np.float32)
            k = rng.standard_normal((T, Hkv, d)).astype(np.float32)
            v = rng.standard_normal((T, Hkv, d)).astype(np.float32)
            raw += [q, k, v]
            inputs.append(tuple(x.astype(np.float64) for x in (q, k, v)))
        with open(os.path.join(out_dir, sname + ".bin"), "wb") as f:
            for x in raw:
                f.write(x.astype("<f4").tobytes())
        for suffix, cfgs in (("", configs()), ("_alloc", alloc_configs())):
            res = [run(shape, inputs, cfg) for cfg in cfgs]
            low = sum(1 for r in res if r["min_margin"] < 1e-4)
            print(f"{sname}{suffix}: {len(res)} configurations, {low} with a "
                  f"selection margin < 1e-4")
            doc = {k: v for k, v in shape.items() if k != "seed"}
            doc["configs"] = res
            if suffix == "_alloc":
                # PyramidKV's layer split on deeper models than the shapes
                doc["pyramid_splits"] = [
                    dict(heavy=b, n_layer=n, beta=beta,
                         split=cacheref.pyramid_split(b, n, beta))
                    for b, n, beta in ((40, 12, 20.0), (7, 12, 20.0),
                                       (100, 28, 20.0), (10, 5, 1.0),
                                       (13, 16, 3.5), (1, 3, 20.0),
                                       (0, 4, 20.0), (25, 1, 20.0))]
            with open(os.path.join(out_dir, sname + suffix + ".json"), "w") as f:
                json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
