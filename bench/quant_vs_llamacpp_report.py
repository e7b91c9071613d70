#!/usr/bin/python3
"""Medians and ratios of bench/quant_vs_llamacpp.sh's raw rows as markdown.

usage: quant_vs_llamacpp_report.py RAW.tsv WORK READ_GBS KVPRUNE [cpu|wall]

Tokens/s from process CPU time (robust on a shared machine with one
thread) and from wall time; the last argument picks which one the ratios
and the roofline use (default cpu; wall on an idle machine, where it is
what a user waits for and spinning threads are not counted against an
engine). Decode roofline: every weight byte read once
per token (the models tie the output to the token embedding, so that matrix
is read whole) plus the full cache's K and V at the prompt length in F16,
at the measured read bandwidth."""
import collections
import json
import statistics
import subprocess
import sys

ORDER = {"f16": 0, "q8_0": 1, "q4_k_m": 2}
ENGINES = ("llama.cpp", "kvprune-full", "kvprune-snapkv5", "kvprune-full-f32kv")


def main():
    raw, work, bw, kvp = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    basis = sys.argv[5] if len(sys.argv) > 5 else "cpu"
    if basis not in ("cpu", "wall"):
        sys.exit("quant_vs_llamacpp_report.py: the basis must be cpu or wall, not %r" % basis)
    pf, dc = "pf_" + basis, "dc_" + basis
    head, rows = None, []
    for path in raw.split(","):  # several raw files: one table
        lines = [l.rstrip("\n").split("\t") for l in open(path) if "\t" in l]
        head, rows = lines[0], rows + lines[1:]
    groups = collections.defaultdict(list)
    for r in rows:
        d = dict(zip(head, r))
        key = (d["model"], d["type"], d["quantizer"], int(d["prompt"]), d["engine"])
        groups[key].append(d)

    def med(key):
        g = groups.get(key)
        if not g:
            return None
        P = key[3]
        f = lambda name, fn: statistics.median(fn(x) for x in g)
        return dict(
            pf_cpu=f("", lambda x: P * 1000.0 / float(x["prefill_cpu_ms"])),
            pf_wall=f("", lambda x: P * 1000.0 / float(x["prefill_ms"])),
            dc_cpu=f("", lambda x: int(x["decode_tokens"]) * 1000.0 / float(x["decode_cpu_ms"])),
            dc_wall=f("", lambda x: int(x["decode_tokens"]) * 1000.0 / float(x["decode_ms"])),
            rss=f("", lambda x: int(x["peak_rss_kb"]) / 1024.0), n=len(g),
            load=f("", lambda x: float(x["load"])))

    info = {}

    def model_info(m, t, qz):
        k = (m, t, qz)
        if k not in info:
            path = ("%s/%s-f16.gguf" % (work, m) if t == "f16" else
                    "%s/%s-%s-%s.gguf" % (work, m, t, qz.replace(".", "")))
            info[k] = json.loads(subprocess.check_output([kvp, "info", "-m", path, "--json"]))
        return info[k]

    print("| model | weights (quantized by) | prompt | engine | prefill tok/s cpu (wall) | ratio | "
          "decode tok/s cpu (wall) | ratio | roofline tok/s | %s/roofline | peak RSS MiB | runs | load |" % basis)
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({k[:4] for k in groups},
                  key=lambda k: (k[0], ORDER.get(k[1], 9), k[3], k[2] != "llama.cpp"))
    for m, t, qz, P in keys:
        base = med((m, t, "llama.cpp", P, "llama.cpp"))
        I = model_info(m, t, qz)
        kv = 2 * I["n_layer"] * I["n_head_kv"] * I["head_dim"] * 2 * P
        roof = bw * 1e9 / (I["weight_bytes"] + kv)
        for eng in ENGINES:
            s = med((m, t, qz, P, eng))
            if not s:
                continue
            mine = eng != "llama.cpp" and base
            rp = "%.2fx" % (s[pf] / base[pf]) if mine else ""
            rd = "%.2fx" % (s[dc] / base[dc]) if mine else ""
            label = "F16" if t == "f16" else "%s (%s)" % (t.upper(), qz)
            print("| %s | %s | %d | %s | %.1f (%.1f) | %s | %.2f (%.2f) | %s | %.1f | %.0f%% | %.0f | %d | %.1f |" % (
                m, label, P, eng, s["pf_cpu"], s["pf_wall"], rp, s["dc_cpu"], s["dc_wall"], rd, roof,
                100 * s[dc] / roof, s["rss"], s["n"], s["load"]))
    print()
    print("Ratios: kvprune / llama.cpp on %s tokens/s (llama.cpp on its own quantized file). "
          "Read bandwidth %.2f GB/s. Weight bytes per token: %s." % (
              "CPU-time" if basis == "cpu" else "wall-time", bw, "; ".join("%s %s (%s) %.0f MiB" % (k[0], k[1], k[2], v["weight_bytes"] / 1048576)
                            for k, v in sorted(info.items()))))


if __name__ == "__main__":
    main()
