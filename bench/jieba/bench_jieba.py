#!/usr/bin/env python3
"""python3-jieba's side of bench/jieba/run.sh: the same load and cuts.
Usage: bench_jieba.py CORPUS.jsonl REPEATS"""
import json
import logging
import sys
import time

import jieba

jieba.setLogLevel(logging.WARNING)
texts = [json.loads(l)["t"] for l in open(sys.argv[1], encoding="utf-8")]
reps = int(sys.argv[2])
loads, cuts, words = [], [], 0
for _ in range(reps):
    tok = jieba.Tokenizer()
    t0, c0 = time.perf_counter(), time.process_time()
    # What a fresh process without jieba's cache file pays: building the
    # prefix dictionary from dict.txt.
    tok.FREQ, tok.total = tok.gen_pfdict(tok.get_dict_file())
    tok.initialized = True
    loads.append((time.perf_counter() - t0, time.process_time() - c0))
    t0, c0 = time.perf_counter(), time.process_time()
    words = sum(len(tok.lcut(t)) for t in texts)
    cuts.append((time.perf_counter() - t0, time.process_time() - c0))
nbytes = sum(len(t.encode("utf-8")) for t in texts)
loads.sort(key=lambda x: x[1])
cuts.sort(key=lambda x: x[1])
lw, lc = loads[reps // 2]
cw, cc = cuts[reps // 2]
print(f"python3-jieba {jieba.__version__}: load {lw:.3f} s wall / {lc:.3f} s CPU; cut {len(texts)} "
      f"strings ({nbytes} bytes, {words} words) {cw:.3f} s wall / {cc:.3f} s CPU = "
      f"{nbytes / cc / 1e6:.2f} MB/s CPU (medians of {reps})")
