#!/usr/bin/env python3
"""`kvprune longbench pred` and `eval` end to end on the fixture in
tests/data/longbench (tools/eval/make_longbench_fixture.py) and the bundled
model models/kvp-mini: the seed's layout and rows, scores equal to the
Python reference scorer (tools/eval/longbench_ref.py) on the same
predictions, pred of a sample equal to `kvprune generate` on the prompt that
`longbench prompt` prints, resuming after a torn line, shards merged into
the same files, LongBench-E buckets, and bad input failing before any
prediction is written. Usage: test_longbench_cli.py PATH-TO-KVPRUNE [--small]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "eval"))
import longbench_ref as ref  # noqa: E402

CLI = sys.argv[1]
MODEL = "models/kvp-mini"
DATA = "tests/data/longbench/data"
CONFIG = "tests/data/longbench/config"
TASKS = ("hotpotqa,multifieldqa_zh,gov_report,vcsum,trec,triviaqa,samsum,passage_count,"
         "passage_retrieval_en,passage_retrieval_zh,lcc,repobench-p")
TASKS_E = "hotpotqa,gov_report,trec,passage_count,lcc,repobench-p"
if "--small" in sys.argv[2:]:  # sanitizer builds: the same checks on fewer datasets
    TASKS, TASKS_E = "hotpotqa,lcc", "lcc"
failures = 0
checks = 0


def check(cond, msg):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


def run(*args, ok=True):
    p = subprocess.run([CLI, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr, file=sys.stderr)
    return p


def pred_args(save, *extra, tasks=TASKS):
    return ["longbench", "pred", "-m", MODEL, "--data-dir", DATA, "--config-dir", CONFIG,
            "--save-dir", save, "--model-name", "kvp-mini", "--task", tasks,
            "--method", "full,snapkv", "--cache-ratio", "0.1", "--threads", "2", "--quiet",
            *extra]


def pred(save, *extra, tasks=TASKS):
    return run(*pred_args(save, *extra, tasks=tasks))


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def data_rows(name):
    return rows(os.path.join(DATA, name + ".jsonl"))


def main():
    tmp = tempfile.mkdtemp(prefix="kvp_lb_")
    try:
        save = os.path.join(tmp, "run")
        p = pred(save)
        check(p.returncode == 0, f"pred failed: {p.stderr}")
        exps = {"full": "kvp-mini-full", "snapkv": "kvp-mini-0.0950+0.0050"}
        check(sorted(os.listdir(os.path.join(save, "pred"))) == sorted(exps.values()),
              f"experiment folders: {os.listdir(os.path.join(save, 'pred'))}")
        for method, exp in exps.items():
            for ds in TASKS.split(","):
                path = os.path.join(save, "pred", exp, f"{ds}-{method}.jsonl")
                check(os.path.exists(path), f"missing {path}")
                if not os.path.exists(path):
                    continue
                got, want = rows(path), data_rows(ds)
                check(len(got) == len(want), f"{path}: {len(got)} rows")
                for g, w in zip(got, want):
                    check(list(g) == ["pred", "answers", "all_classes", "length"], f"keys {list(g)}")
                    check(g["answers"] == w["answers"] and g["all_classes"] == w["all_classes"]
                          and g["length"] == w["length"], f"{path}: copied fields differ")
                    check(isinstance(g["pred"], str), "pred is a string")

        # pred of one sample == kvprune generate on the prompt it was given
        # (one short and one cut in the middle; chat template and not).
        for ds, idx, chat in (("hotpotqa", 0, True), ("hotpotqa", 1, True), ("lcc", 1, False)):
            pp = run("longbench", "prompt", "-m", MODEL, "--data-dir", DATA, "--config-dir",
                     CONFIG, "--task", ds, "--index", str(idx), "--model-name", "kvp-mini")
            check(pp.returncode == 0, f"prompt: {pp.stderr}")
            check(("cut in the middle" in pp.stderr) == (idx == 1), f"truncation note: {pp.stderr}")
            pf = os.path.join(tmp, "prompt.txt")
            with open(pf, "w", encoding="utf-8") as f:
                f.write(pp.stdout)
            maxgen = json.load(open(os.path.join(CONFIG, "dataset2maxlen.json")))[ds]
            g = run("generate", "-m", MODEL, "--prompt-file", pf, "-n", str(maxgen), "--json",
                    "--threads", "2", *([] if chat else ["--no-chat"]))
            check(g.returncode == 0, f"generate: {g.stderr}")
            out = json.loads(g.stdout)
            want = rows(os.path.join(save, "pred", "kvp-mini-full", f"{ds}-full.jsonl"))[idx]["pred"]
            check(out.get("text") == want, f"{ds}[{idx}]: generate {out.get('text')!r} vs pred {want!r}")

        # Scores: the C scorer vs the Python reference on the same files.
        e = run("longbench", "eval", "--save-dir", save, "--model-name", "kvp-mini")
        check(e.returncode == 0, f"eval failed: {e.stderr}")
        check("average" in e.stdout and "hotpotqa" in e.stdout, f"table: {e.stdout}")
        for exp in exps.values():
            res = json.load(open(os.path.join(save, "pred", exp, "result.json")))
            want = ref.score_folder(os.path.join(save, "pred", exp), False)
            check(set(res) == set(want), f"{exp}: files {sorted(res)} vs {sorted(want)}")
            for k in want:
                check(res.get(k) == want[k], f"{exp}/{k}: C {res.get(k)} vs Python {want[k]}")
            check(list(res) == sorted(res), "result.json keys sorted")
            with open(os.path.join(save, "pred", exp, "result.json")) as f:
                text = f.read()
            check(text == json.dumps(res, indent=2), "result.json formatted like json.dump(indent=2)")
        print(f"scored {len(want)} files x {len(exps)} experiments: equal to the reference")

        # Resume: a file cut to its first row plus a torn line is completed
        # to the same bytes; an untouched run generates nothing.
        before = tree(save)
        victim = os.path.join(save, "pred", "kvp-mini-full", TASKS.split(",")[-1] + "-full.jsonl")
        with open(victim, "rb") as f:
            first = f.readline()
        with open(victim, "wb") as f:
            f.write(first + b'{"pred": "torn')
        p = pred(save)
        check(p.returncode == 0, f"resume: {p.stderr}")
        check("torn" in p.stderr, f"resume warns about the torn line: {p.stderr}")
        check("1 generated" in p.stdout, f"resume generated one row: {p.stdout}")
        after = tree(save)
        check({k: v for k, v in after.items() if not k.endswith("result.json")} ==
              {k: v for k, v in before.items() if not k.endswith("result.json")},
              "resumed files equal the first run's")

        # SIGKILL once the first rows are written: the rerun completes the
        # files to the same bytes.
        killed = os.path.join(tmp, "killed")
        proc = subprocess.Popen([CLI, *pred_args(killed)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if any(os.path.getsize(os.path.join(d, f)) > 0
                   for d, _, fs in os.walk(killed) for f in fs):
                break
            time.sleep(0.02)
        killed_early = proc.poll() is None
        proc.kill()
        proc.wait()
        p = pred(killed)
        check(p.returncode == 0, f"after SIGKILL: {p.stderr}")
        check(tree(killed) == {k: v for k, v in before.items() if not k.endswith("result.json")},
              "files after SIGKILL + rerun equal one uninterrupted run")
        print("SIGKILL during pred:", "killed mid-run" if killed_early else "run had finished")

        # Shards: two shard jobs, then an unsharded run merges their parts.
        shard = os.path.join(tmp, "shard")
        for i in range(2):
            p = pred(shard, "--shard", f"{i}/2")
            check(p.returncode == 0, f"shard {i}: {p.stderr}")
        parts = [f for d, _, fs in os.walk(shard) for f in fs if ".part-" in f]
        check(len(parts) == 2 * 2 * len(TASKS.split(",")), f"{len(parts)} part files")
        p = pred(shard)
        check(p.returncode == 0 and " 0 generated" in p.stdout, f"merge: {p.stdout} {p.stderr}")
        merged = tree(shard)
        check(merged == {k: v for k, v in before.items() if not k.endswith("result.json")},
              "merged shards equal the unsharded run")

        # LongBench-E: pred_e/ and length buckets.
        p = pred(save, "--e", tasks=TASKS_E)
        check(p.returncode == 0, f"pred --e: {p.stderr}")
        e = run("longbench", "eval", "--save-dir", save, "--model-name", "kvp-mini", "--e")
        check(e.returncode == 0, f"eval --e: {e.stderr}")
        for exp in exps.values():
            folder = os.path.join(save, "pred_e", exp)
            res = json.load(open(os.path.join(folder, "result.json")))
            want = ref.score_folder(folder, True)
            check(res == want or json.dumps(res, sort_keys=True) == json.dumps(want, sort_keys=True),
                  f"{exp} --e: C {res} vs Python {want}")
            check(all(set(v) == {"0-4k", "4-8k", "8k+"} for v in res.values()), "buckets")

        # A file with no rows is reported and does not stop the others.
        empty = os.path.join(save, "pred", "kvp-mini-full", "qasper-full.jsonl")
        open(empty, "w").close()
        e = run("longbench", "eval", "--save-dir", save, "--model-name", "kvp-mini-full")
        check(e.returncode == 0 and "qasper-full.jsonl: not scored: no rows" in e.stderr,
              f"empty file: {e.stderr}")
        res = json.load(open(os.path.join(save, "pred", "kvp-mini-full", "result.json")))
        check("qasper-full.jsonl" not in res and "hotpotqa-full.jsonl" in res, "others scored")

        bad_input(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"test_longbench_cli: {checks} checks, {failures} failed")
    return 1 if failures else 0


def bad_input(tmp):
    """Each a clear error (exit 1) before any prediction is written."""
    def fresh(name):
        d = os.path.join(tmp, name)
        shutil.copytree(DATA, os.path.join(d, "data"))
        shutil.copytree(CONFIG, os.path.join(d, "config"))
        return d

    def expect(d, words, *extra, tasks="hotpotqa,trec", data=None, config=None, code=1):
        p = run("longbench", "pred", "-m", MODEL, "--data-dir", data or os.path.join(d, "data"),
                "--config-dir", config or os.path.join(d, "config"), "--save-dir",
                os.path.join(d, "out"), "--task", tasks, "--method", "full", "--quiet",
                *(extra or ("--model-name", "kvp-mini")), ok=False)
        check(p.returncode == code, f"{words}: exit {p.returncode}, expected {code}")
        for w in words:
            check(w in p.stderr, f"message lacks {w!r}: {p.stderr.strip()}")
        check(not os.path.exists(os.path.join(d, "out")), f"{words}: something was written")

    d = fresh("missing_data")
    os.remove(os.path.join(d, "data", "trec.jsonl"))
    expect(d, ["trec.jsonl", "cannot read"])
    d = fresh("missing_config")
    os.remove(os.path.join(d, "config", "dataset2maxlen.json"))
    expect(d, ["dataset2maxlen.json"])
    d = fresh("missing_key")
    with open(os.path.join(d, "config", "dataset2prompt.json"), "w") as f:
        json.dump({"hotpotqa": "{context}{input}"}, f)
    expect(d, ["dataset2prompt.json", "'trec'"])
    d = fresh("wrong_type")
    rs = data_rows("trec")
    rs[1]["answers"] = "Human being"
    with open(os.path.join(d, "data", "trec.jsonl"), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rs))
    expect(d, ["trec.jsonl:2", "answers"])
    d = fresh("malformed")
    with open(os.path.join(d, "data", "hotpotqa.jsonl"), "a") as f:
        f.write('{"input": "x", \n')
    expect(d, ["hotpotqa.jsonl:3", "invalid JSON"])
    d = fresh("missing_field")
    rs = data_rows("hotpotqa")
    del rs[0]["context"]
    with open(os.path.join(d, "data", "hotpotqa.jsonl"), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rs))
    expect(d, ["hotpotqa.jsonl:1", "'context'"])
    d = fresh("unknown_dataset")
    # a bad flag value is a usage error: exit 2
    expect(d, ["unknown dataset 'hotpot'"], tasks="hotpot", code=2)
    d = fresh("unknown_model")
    expect(d, ["'some-model'", "kvp-mini", "--max-length"], "--model-name", "some-model", code=2)


if __name__ == "__main__":
    sys.exit(main())
