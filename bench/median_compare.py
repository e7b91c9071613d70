#!/usr/bin/python3
"""Medians over repeated `kvprune compare --json` runs (the output of
bench/bench_cache_methods.sh): one row per method with prefill time and its
ratio to the first method, the prefill time spent in the cache's attention
and scoring, decode tokens/s and its ratio to the first method, decode
attention time, and KV memory. usage: bench/median_compare.py FILE

"scoring vs prefill" is (prefill attention ms of the method - that of the
first method) / prefill ms of the first method: the cost of scoring and
eviction measured inside the attention, which on a busy machine is far less
noisy than the difference of two whole prefill times."""
import json
import statistics
import sys


def docs(text):
    dec, i = json.JSONDecoder(), 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return
        # comment lines start with '#'; skip to the next object
        obj, i = dec.raw_decode(text, j)
        yield obj


def main():
    text = open(sys.argv[1]).read()
    runs = list(docs(text))
    by = {}
    order = []
    for run in runs:
        for r in run["results"]:
            if r["method"] not in by:
                order.append(r["method"])
            by.setdefault(r["method"], []).append(r)
    med = lambda rs, k: statistics.median(x[k] for x in rs)
    base = med(by[order[0]], "prefill_ms")
    pattn = lambda rs: statistics.median(x["attn_ms"] - x["decode_attn_ms"] for x in rs)
    tok_s = lambda rs: statistics.median(
        [(x["n_generated"] - 1) * 1000.0 / x["decode_ms"] for x in rs if x["decode_ms"] > 0] or [0.0])
    base_attn, base_tok = pattn(by[order[0]]), tok_s(by[order[0]])
    print("%d runs, prompt %d tokens" % (len(runs), runs[0]["n_prompt"]))
    print("| method | prefill ms (median) | vs %s | prefill attention ms | scoring vs prefill "
          "| decode tok/s | vs %s | decode attention ms | KV MiB | peak KV MiB |" % (order[0], order[0]))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in order:
        rs = by[m]
        p = med(rs, "prefill_ms")
        t = tok_s(rs)
        print("| %s | %.0f | %+.1f%% | %.0f | %+.1f%% | %.1f | %.2fx | %.1f | %.1f | %.1f |" % (
            m, p, 100.0 * (p / base - 1), pattn(rs), 100.0 * (pattn(rs) - base_attn) / base,
            t, t / base_tok if base_tok else 0.0, med(rs, "decode_attn_ms"),
            med(rs, "kv_bytes") / 2**20, med(rs, "kv_bytes_peak") / 2**20))


if __name__ == "__main__":
    main()
