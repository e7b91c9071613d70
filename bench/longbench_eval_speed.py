#!/usr/bin/env python3
"""Scoring speed of `kvprune longbench eval` on a synthetic full LongBench run.

    /usr/bin/python3 bench/longbench_eval_speed.py build/kvprune [OUT_DIR]

Writes OUT_DIR/pred/bench-full/<dataset>-full.jsonl for the 21 LongBench
datasets with LongBench's sample counts (4,750 rows): summaries of ~400
words against ~600-word references (one in ten a run-on text without "."),
Chinese summaries, QA answers, code lines; then times `kvprune longbench
eval` (3 runs, median) and the Python reference scorer
(tools/eval/longbench_ref.py, one run) on the same files and checks that
both give the same result.json.
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "eval"))
import longbench_ref as ref  # noqa: E402

COUNTS = {"narrativeqa": 200, "qasper": 200, "multifieldqa_en": 150, "multifieldqa_zh": 200,
          "hotpotqa": 200, "2wikimqa": 200, "musique": 200, "dureader": 200, "gov_report": 200,
          "qmsum": 200, "multi_news": 200, "vcsum": 200, "trec": 200, "triviaqa": 200,
          "samsum": 200, "lsht": 200, "passage_count": 200, "passage_retrieval_en": 200,
          "passage_retrieval_zh": 200, "lcc": 500, "repobench-p": 500}
EN = ("the report says that agency officials reviewed program costs and found several "
      "weaknesses in oversight of contracts grants and federal funds during fiscal years "
      "while congress asked for more data on performance measures and risks").split()
ZH = "会议 讨论 了 公司 今年 的 销售 计划 和 市场 策略 大家 认为 需要 提高 产品 质量".split()
CLASSES = ["Abbreviation", "Animal", "Color", "Description", "Entity", "Human being", "Location",
           "City", "Number", "Date"]


def en(r, n, dot=12, runon=False):
    w = [r.choice(EN) for _ in range(n)]
    if not runon:
        for i in range(dot - 1, n, dot):
            w[i] += "."
    return " ".join(w)


def zh(r, n):
    return "".join(r.choice(ZH) + ("。" if i % 15 == 14 else "") for i in range(n))


def row(r, ds):
    classes = None
    if ds in ("gov_report", "multi_news", "qmsum"):
        runon = r.random() < 0.1
        pred, ans = en(r, 400, runon=runon), [en(r, 600)]
    elif ds in ("vcsum", "dureader"):
        pred, ans = zh(r, 300), [zh(r, 400)]
    elif ds == "samsum":
        pred, ans = en(r, 30), [en(r, 25)]
    elif ds in ("trec", "lsht"):
        classes = CLASSES
        pred, ans = r.choice(CLASSES) + "\n" + en(r, 5), [r.choice(CLASSES)]
    elif ds == "multifieldqa_zh":
        pred, ans = zh(r, 20), [zh(r, 8)]
    elif ds == "passage_count":
        pred, ans = str(r.randint(1, 30)), [str(r.randint(1, 30))]
    elif ds == "passage_retrieval_en":
        pred, ans = f"Paragraph {r.randint(1, 30)}", [f"Paragraph {r.randint(1, 30)}"]
    elif ds == "passage_retrieval_zh":
        pred, ans = f"段落{r.randint(1, 30)}", [f"段落{r.randint(1, 30)}"]
    elif ds in ("lcc", "repobench-p"):
        pred = "\n".join(f"    x_{i} = compute(y_{i}, {r.randint(0, 9)})" for i in range(5))
        ans = [f"    x_0 = compute(y_0, {r.randint(0, 9)})"]
    else:
        pred, ans = en(r, 20), [en(r, 6), en(r, 4)]
    return {"pred": pred, "answers": ans, "all_classes": classes, "length": r.randint(1000, 20000)}


def main():
    cli = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "out/bench_longbench_eval"
    folder = os.path.join(out, "pred", "bench-full")
    os.makedirs(folder, exist_ok=True)
    r = random.Random(1)
    n = 0
    for ds, count in COUNTS.items():
        with open(os.path.join(folder, f"{ds}-full.jsonl"), "w", encoding="utf-8") as f:
            for _ in range(count):
                f.write(json.dumps(row(r, ds), ensure_ascii=False) + "\n")
                n += 1
    times = []
    for _ in range(3):
        t = time.perf_counter()
        p = subprocess.run([cli, "longbench", "eval", "--save-dir", out, "--model-name",
                            "bench-full"], capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if p.returncode:
            sys.exit(p.stderr)
    c = json.load(open(os.path.join(folder, "result.json")))
    t = time.perf_counter()
    py = ref.score_folder(folder, False)
    t_py = time.perf_counter() - t
    print(f"{n} predictions in {len(COUNTS)} files")
    print(f"kvprune longbench eval: median {statistics.median(times):.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in times)})")
    print(f"Python reference scorer: {t_py:.1f} s")
    print("same result.json:", c == py)


if __name__ == "__main__":
    main()
