#!/usr/bin/python3
"""Medians and ratios of bench/quant_vs_llamacpp.sh's raw rows as markdown.

usage: quant_vs_llamacpp_report.py RAW.tsv WORK READ_GBS KVPRUNE

Decode roofline: every weight byte is read once per token (the models tie
the output to the token embedding, so that matrix is read whole) plus the
full cache's K and V at the context length in F16, at the measured read
bandwidth."""
import collections
import json
import statistics
import subprocess
import sys


def main():
    raw, work, bw, kvp = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    rows = [l.rstrip("\n").split("\t") for l in open(raw)][1:]
    groups = collections.defaultdict(list)
    files = {}
    for r in rows:
        rep, m, t, qz, P, eng, pf, dc, nd, rss, load = r
        groups[(m, t, qz, int(P), eng)].append((float(pf), float(dc), int(nd), int(rss), float(load)))
    def med(key):
        g = groups.get(key)
        if not g:
            return None
        P = key[3]
        return dict(prefill=statistics.median(P * 1000.0 / x[0] for x in g),
                    decode=statistics.median(x[2] * 1000.0 / x[1] for x in g),
                    rss=statistics.median(x[3] for x in g) / 1024.0, n=len(g),
                    load=statistics.median(x[4] for x in g))
    info = {}
    def model_info(m, t, qz):
        k = (m, t, qz)
        if k not in info:
            path = "%s/%s-%s.gguf" % (work, m, t) if t == "f16" else "%s/%s-%s-%s.gguf" % (work, m, t, qz)
            info[k] = json.loads(subprocess.check_output([kvp, "info", "-m", path, "--json"]))
        return info[k]
    print("| model | weights (file by) | prompt | engine | prefill tok/s | ratio | decode tok/s | ratio | "
          "roofline tok/s | % of roofline | peak RSS MiB | runs | load |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({k[:4] for k in groups}, key=lambda k: (k[0], ["f16", "q8_0", "q4_k_m"].index(k[1])
                                                             if k[1] in ("f16", "q8_0", "q4_k_m") else 9,
                                                         k[2], k[3]))
    for m, t, qz, P in keys:
        base = med((m, t, "llama.cpp", P, "llama.cpp"))
        I = model_info(m, t, qz)
        kv = 2 * I["n_layer"] * I["n_head_kv"] * I["head_dim"] * 2 * (P + 32)
        roof = bw * 1e9 / (I["weight_bytes"] + kv)
        for eng in ("llama.cpp", "kvprune-full", "kvprune-snapkv5"):
            s = med((m, t, qz, P, eng))
            if not s:
                continue
            rp = "%.2fx" % (s["prefill"] / base["prefill"]) if base and eng != "llama.cpp" else ""
            rd = "%.2fx" % (s["decode"] / base["decode"]) if base and eng != "llama.cpp" else ""
            label = t.upper() if t != "f16" else "F16"
            by = "" if t == "f16" else " (%s)" % qz
            print("| %s | %s%s | %d | %s | %.1f | %s | %.2f | %s | %.1f | %.0f%% | %.0f | %d | %.1f |" % (
                m, label, by, P, eng, s["prefill"], rp, s["decode"], rd, roof, 100 * s["decode"] / roof,
                s["rss"], s["n"], s["load"]))
    print()
    print("read bandwidth: %.2f GB/s; weight bytes per token: %s" % (
        bw, ", ".join("%s %s (%s) %.0f MiB" % (k[0], k[1], k[2], v["weight_bytes"] / 1048576)
                      for k, v in sorted(info.items()))))


if __name__ == "__main__":
    main()
