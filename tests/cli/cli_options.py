#!/usr/bin/env python3
"""The command line's options, checked from the outside against this file's
own inventory of every command's flags (the documented interface):

- `--help` lists exactly the flags below (every spelling), in lines of at
  most 80 columns, and exits 0;
- every flag is accepted: given a good value, parsing goes on to the next
  argument (a trailing unknown flag is what fails);
- a bad value of each type, or a missing value, exits 2 with a message that
  starts with "kvprune <command>: " and names the flag (an enum's message
  lists its values);
- refused flags say why, unknown flags and stray arguments exit 2;
- `kvprune --help` lists exactly the commands below, and the commands
  made of subcommands (needle, longbench) list, dispatch and refuse
  subcommands from the same inventory.

No model is loaded: every case fails (or is refused) while parsing.
Usage: cli_options.py PATH-TO-KVPRUNE"""
import re
import subprocess
import sys

checks = failures = 0


def check(ok, msg):
    global checks, failures
    checks += 1
    if not ok:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


# Types: F flag, I integer, U non-negative integer, R number, S string,
# E enum (values), LI/LR/LS lists of integers/numbers/names, C custom
# (--shard I/N), X refused.
def o(names, kind, good=None, values=None, bad=None):
    return {"names": names.split("|"), "kind": kind, "good": good, "values": values, "bad": bad}


METHOD = "unknown method 'nope'"
CACHE_METHOD = [o("--method", "S", "h2o", bad=[("nope", METHOD)])]
CACHE_BUDGET = [
    o("--num-recent", "I"), o("--num-heavy", "I"), o("--recent-ratio", "R"),
    o("--heavy-ratio", "R"), o("--cache-ratio", "R"), o("--no-decode-evict", "F"),
    o("--budget-alloc", "E", values=["uniform", "adaptive"]), o("--safeguard", "R"),
    o("--layer-alloc", "E", values=["uniform", "pyramid"]),
    o("--pyramid-beta", "R", "2", bad=[("0.5", "out of range")]),
]
CACHE_STORAGE = [
    o("--streaming", "F"), o("--num-sink", "I"), o("--gqa-mode", "E", values=["per-kv-head", "per-query-head"]),
    o("--cache-max-tokens", "I"), o("--kv-type", "E", values=["f16", "bf16", "f32"]),
]
CACHE_ALL = CACHE_METHOD + CACHE_BUDGET + CACHE_STORAGE
MODEL = [o("--compute", "E", values=["auto", "f32", "bf16"]), o("--repack", "F")]
PROMPT = [o("--chat-template", "S"), o("--no-chat", "F"), o("--system", "S")]

COMMANDS = {
    "generate": [
        o("-m|--model", "S"), o("--prompt-ids", "LI"), o("--prompt", "S"), o("--prompt-file", "S"),
        o("-n|--n-predict|--max-new-tokens", "I"), o("--json", "F"), o("--dump-logits", "S"),
        o("--save-cache", "S"), o("--load-cache", "S"), o("--dump-kept", "S"),
        o("--ignore-eos", "F"), o("-t|--threads", "I"), o("--temperature", "R"),
        o("--top-k", "I"), o("--top-p", "R"), o("--seed", "U"), o("--prefill-chunk", "I"),
        o("--no-chat", "F"), o("--chat-template", "S"), o("--system", "S"),
    ] + CACHE_ALL + MODEL,
    "compare": [
        o("-m|--model", "S"), o("--prompt", "S"), o("--prompt-file", "S"), o("--prompt-ids", "LI"),
        o("--methods|--method", "LS", "full,h2o", bad=[("full,nope", METHOD)]),
        o("-n|--max-new-tokens", "I"), o("-t|--threads", "I"), o("--prefill-chunk", "I"),
        o("--json", "F"), o("--ignore-eos", "F"), o("--dump-kept", "S"),
    ] + CACHE_BUDGET + CACHE_STORAGE + MODEL,
    "chat": [
        o("-m|--model", "S"), o("--system", "S"), o("--max-kv-mib", "R"),
        o("-n|--max-new-tokens|--n-predict", "I"), o("--temperature", "R"), o("--top-k", "I"),
        o("--top-p", "R"), o("--seed", "U"), o("--prefill-chunk", "I"), o("--chat-template", "S"),
        o("-t|--threads", "I"), o("--json", "F"), o("--ignore-eos", "F"), o("--load", "S"),
    ] + CACHE_ALL,
    "serve": [
        o("-m|--model", "S"), o("--host", "S", "127.0.0.1"), o("--port", "I"), o("--parallel", "I"),
        o("--queue", "I"), o("--max-sessions", "I"), o("--max-kv-mib", "R"),
        o("--max-body-kib", "I"), o("--max-prompt-tokens", "I"), o("--max-tokens-limit", "I"),
        o("--connections", "I"), o("-t|--threads", "I"), o("-n|--max-tokens", "I"),
        o("--temperature", "R"), o("--top-p", "R"), o("--seed", "U"), o("--prefill-chunk", "I"),
    ] + CACHE_ALL,
    "tokenize": [
        o("-m|--model", "S"), o("--text", "S"), o("--text-file", "S"), o("--json", "F"),
        o("--no-special", "F"), o("--no-parse-special", "F"),
    ],
    "info": [o("-m|--model", "S"), o("--json", "F")],
    "convert": [
        o("-m|--model", "S"), o("-o|--output", "S"),
        o("--type", "E", values=["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k",
                                 "q4_k_m", "q5_k_m"]),
        o("--vocab-only", "F"),
    ],
    "needle gen": [
        o("-m|--model", "S"), o("--tokenizer", "S"), o("-o|--output", "S"), o("--haystack", "S"),
        o("--variant", "E", values=["single", "multikey", "multivalue", "multiquery"]),
        o("--num-needles", "I", "2"), o("--lengths", "LI", "64,128"), o("--depths", "LR", "0,50"),
        o("--num-depths", "I"), o("--samples", "I"), o("--seed", "U"), o("--template", "S"),
        o("-n|--max-new-tokens", "I"),
    ] + PROMPT,
    "needle pred": [
        o("-m|--model", "S"), o("--data", "S"), o("--save-dir", "S"), o("--task", "S"),
        o("--method", "LS", "full,h2o", bad=[("h2o,nope", METHOD)]),
        o("--cache-ratio", "LR", "0.1,1", bad=[("0.1,0", "outside (0, 1]"), ("1.5", "outside (0, 1]")]),
        o("--num-recent", "I"), o("--no-decode-evict", "F"), o("-n|--max-new-tokens", "I"),
        o("--no-postprocess", "F"), o("--shard", "C"), o("--threads", "I"), o("--quiet", "F"),
        o("--num-heavy", "X"), o("--recent-ratio", "X"), o("--heavy-ratio", "X"),
        o("--alloc", "LS", "uniform,adaptive+pyramid", bad=[("uniform,nope", "is not uniform")]),
        o("--budget-alloc", "X"), o("--layer-alloc", "X"),
    ] + PROMPT + CACHE_STORAGE + MODEL,
    "needle eval": [
        o("--save-dir", "S"), o("--task", "S"), o("--heatmap", "S"), o("--no-plots", "F"),
    ],
    "longbench pred": [
        o("-m|--model", "S"), o("--data-dir", "S"), o("--config-dir", "S"), o("--save-dir", "S"),
        o("--model-name", "S"), o("--max-length", "I", "2"), o("--task", "LS", "hotpotqa,trec"),
        o("--e", "F"), o("--method", "LS", "full,h2o", bad=[("nope", METHOD)]),
        o("--cache-ratio", "LR"), o("--num-recent", "I"), o("--num-heavy", "I"),
        o("--no-decode-evict", "F"),
        o("--postprocess", "E", values=["auto", "none", "llama3", "xgen", "internlm"]),
        o("--shard", "C"), o("--threads", "I"), o("--quiet", "F"),
        o("--recent-ratio", "X"), o("--heavy-ratio", "X"),
    ] + PROMPT + CACHE_STORAGE,
    "longbench eval": [
        o("--save-dir", "S"), o("--model-name", "S"), o("--e", "F"), o("--jieba-dir", "S"),
        o("--rouge-exact", "F"),
    ],
    "longbench prompt": [
        o("-m|--model", "S"), o("--tokenizer", "S"), o("--data-dir", "S"), o("--config-dir", "S"),
        o("--task", "S"), o("--index", "I"), o("--model-name", "S"), o("--max-length", "I", "2"),
        o("--e", "F"),
    ],
}

GOOD = {"I": "1", "U": "1", "R": "0.5", "S": "x", "LI": "1,2", "LR": "0.5", "LS": "full", "C": "0/2"}
BAD = {
    "I": [("x", "is not an integer"), ("1.5", "is not an integer"),
          ("99999999999999999", "out of range")],
    "U": [("-1", "not a non-negative integer"), ("x", "not a non-negative integer"),
          ("99999999999999999999999", "out of range")],
    "R": [("abc", "is not a number"), ("nan", "is not a number"), ("inf", "is not a number")],
    "LI": [("1,x", "is not an integer"), (",", "empty list")],
    "LR": [("0.5,abc", "is not a number"), (",", "empty list")],
    "LS": [(",", "empty list")],
    "C": [("3/2", "is not I/N"), ("x", "is not I/N")],
    "S": [],
}

KVPRUNE = None


def run(command, *args):
    p = subprocess.run([KVPRUNE, *command.split(), *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def help_flags(text):
    """Every spelling of every flag that --help lists."""
    flags = set()
    for line in text.splitlines():
        m = re.match(r"^  (-.*?)(?:  |$)", line)
        if not m:
            continue
        for part in m.group(1).split(", "):
            flags.add(part.split(" ")[0])
    return flags


def usage_error(command, args, flag, words, what):
    rc, _, err = run(command, *args)
    prefix = f"kvprune {command}: "
    check(rc == 2, f"{what}: exit {rc}, expected 2 ({err.strip()})")
    check(err.startswith(prefix), f"{what}: message does not start with {prefix!r}: {err.strip()}")
    check(flag in err, f"{what}: message does not name {flag}: {err.strip()}")
    for w in words:
        check(w in err, f"{what}: message lacks {w!r}: {err.strip()}")


def test_command(command, spec):
    rc, out, err = run(command, "--help")
    check(rc == 0, f"{command} --help: exit {rc}")
    listed = help_flags(out)
    expected = {n for opt in spec if opt["kind"] != "X" for n in opt["names"]}
    check(listed == expected, f"{command} --help: lists {sorted(listed - expected)} beyond the "
          f"inventory, misses {sorted(expected - listed)}")
    long_lines = [l for l in out.splitlines() if len(l) > 80]
    check(not long_lines, f"{command} --help: lines over 80 columns: {long_lines}")
    # --help wins wherever it is, even after a bad value
    rc, out2, _ = run(command, "--bogus", "--help")
    check(rc == 0 and out2 == out, f"{command} --bogus --help: exit {rc}")

    after = "--after-the-last-good-flag"
    for opt in spec:
        kind = opt["kind"]
        for k, name in enumerate(opt["names"]):
            what = f"{command} {name}"
            if kind == "X":
                rc, _, err = run(command, name, "1")
                check(rc == 2 and err.startswith(f"kvprune {command}: {name}: "),
                      f"{what}: refused with exit {rc}: {err.strip()}")
                continue
            value = [] if kind == "F" else [opt["good"] or (opt["values"][0] if kind == "E"
                                                             else GOOD[kind])]
            usage_error(command, [name, *value, after], after, ["unknown flag"],
                        f"{what} {' '.join(value)} (accepted)")
            if kind == "F" or k > 0:
                continue  # the bad values through one spelling
            usage_error(command, [name], name, ["needs a value"], f"{what} (no value)")
            bad = list(BAD.get(kind, [])) + list(opt["bad"] or [])
            if kind == "E":
                bad.append(("bogus", "'bogus'"))
            for v, word in bad:
                words = [word] + (opt["values"] if kind == "E" else [])
                usage_error(command, [name, v], name, words, f"{what} {v}")
    usage_error(command, ["--no-such-flag"], "--no-such-flag", ["unknown flag"],
                f"{command} --no-such-flag")
    usage_error(command, ["stray"], "stray", ["unexpected argument"], f"{command} stray")


def listed_names(text):
    """The names a usage lists, one a line as "  name  summary"."""
    return [m.group(1) for m in (re.match(r"^  ([a-z]+) +\S", l) for l in text.splitlines()) if m]


def test_dispatch():
    """kvprune and its commands made of subcommands list exactly the
    inventory's commands (in its order for the subcommands), dispatch each,
    and refuse unknown ones with exit 2 and a message that lists them."""
    subs = {}
    for name in COMMANDS:
        top, _, sub = name.partition(" ")
        subs.setdefault(top, []).extend([sub] if sub else [])
    rc, out, _ = run("", "--help")
    check(rc == 0 and sorted(listed_names(out)) == sorted(subs),
          f"kvprune --help: exit {rc}, lists {listed_names(out)}, expected {sorted(subs)}")
    for top, names in subs.items():
        if not names:
            continue
        rc, out, _ = run(top, "--help")
        check(rc == 0, f"{top} --help: exit {rc}")
        check(listed_names(out) == names, f"{top} --help lists {listed_names(out)}, expected {names}")
        check(out.startswith(f"usage: kvprune {top} {'|'.join(names)} [options]\n"),
              f"{top} --help: usage line {out.splitlines()[:1]}")
        long_lines = [l for l in out.splitlines() if len(l) > 80]
        check(not long_lines, f"{top} --help: lines over 80 columns: {long_lines}")
        rc, _, err = run(top)
        check(rc == 2 and listed_names(err) == names, f"{top} without a subcommand: exit {rc}: {err}")
        rc, _, err = run(top, "nope")
        spelled = ", ".join(names[:-1]) + " or " + names[-1]
        check(rc == 2 and err.startswith(f"kvprune {top}: unknown subcommand 'nope' ({spelled})"),
              f"{top} nope: exit {rc}: {err.strip()}")
        for sub in names:  # each dispatched: its own --help
            rc, out, _ = run(f"{top} {sub}", "--help")
            check(rc == 0 and out.startswith(f"usage: kvprune {top} {sub} "),
                  f"{top} {sub} --help: exit {rc}: {out.splitlines()[:1]}")


def main():
    global KVPRUNE
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    KVPRUNE = sys.argv[1]
    for command, spec in COMMANDS.items():
        test_command(command, spec)
    test_dispatch()
    # required flags: every missing one is named, in one message
    usage_error("needle pred", [], "-m MODEL", ["--data FILE", "--save-dir DIR", "are required"],
                "needle pred without its required flags")
    usage_error("generate", ["--prompt-ids", "1"], "-m PATH", ["is required"],
                "generate without -m")
    print(f"cli_options: {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
