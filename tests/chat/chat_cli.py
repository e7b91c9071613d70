"""kvprune chat driven through a pipe (one turn per line, --json).

Oracles: the whole conversation as one prompt for `kvprune generate`
(--prompt-ids), rendered here from the model's own chat template (the
Jinja in models/kvp-mini/tokenizer_config.json: '<|role|>\\n' + content +
'<|end|>\\n', then '<|assistant|>\\n') and tokenized by `kvprune tokenize`;
with the full cache a conversation is one prompt read in pieces, so each
turn's greedy ids must equal generate's on the whole conversation so far.
Pruned caches: every turn stays within its token budget or --max-kv-mib.
Usage: chat_cli.py KVPRUNE MODEL"""
import json
import subprocess
import sys

cli, model = sys.argv[1], sys.argv[2]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def run(args, stdin=None):
    p = subprocess.run([cli] + args, input=stdin, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def chat(lines, flags):
    rc, out, err = run(["chat", "-m", model, "--json"] + flags, "\n".join(lines) + "\n")
    check(rc == 0, "chat exit %d: %s" % (rc, err))
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")], err


def tokenize(text, special=True):
    args = ["tokenize", "-m", model, "--text", text] + ([] if special else ["--no-special"])
    rc, out, err = run(args)
    check(rc == 0, "tokenize: " + err)
    return [int(x) for x in out.split()]


def generate(ids, flags, n):
    rc, out, err = run(["generate", "-m", model, "--prompt-ids", ",".join(map(str, ids)),
                        "-n", str(n), "--json"] + flags)
    check(rc == 0, "generate: " + err)
    return json.loads(out)


EOS = 2
turns = ["What is the secret number?", "And the other one?", "Say it again, please."]
N = 24

# 1. full cache: each turn equals generate on the whole conversation
got, _ = chat(turns, ["-n", str(N)])
check(len(got) == len(turns), "one JSON object per turn")
prompt = tokenize("<|user|>\n" + turns[0] + "<|end|>\n<|assistant|>\n")
for k, t in enumerate(got):
    if k > 0:
        prev = got[k - 1]["ids"]
        if prev and prev[-1] == EOS:
            prev = prev[:-1]  # the template's <|end|> stands for it
        prompt = prompt + prev + tokenize("<|end|>\n<|user|>\n" + turns[k] + "<|end|>\n<|assistant|>\n",
                                          special=False)
    ref = generate(prompt, [], N)
    check(t["ids"] == ref["ids"], "full cache, turn %d: chat %s vs generate %s" % (k + 1, t["ids"], ref["ids"]))
    check(t["stats"]["tokens_seen"] == len(prompt) + len(t["ids"]) - 1,
          "turn %d: tokens seen %d" % (k + 1, t["stats"]["tokens_seen"]))

# 2. a pruned cache with an absolute budget: turn 1 as generate; always within budget
flags = ["--method", "snapkv", "--num-recent", "8", "--num-heavy", "24", "-n", "16", "--prefill-chunk", "16"]
many = [turns[i % 3] for i in range(8)]
got, _ = chat(many, flags)
check(len(got) == len(many), "8 turns")
ref = generate(tokenize("<|user|>\n" + turns[0] + "<|end|>\n<|assistant|>\n"), flags[:-2], 16)
check(got[0]["ids"] == ref["ids"], "snapkv turn 1 equals generate")
streams = 4 * 2  # layers x KV heads of kvp-mini
tok_bytes = got[0]["stats"]["kv_bytes"] // max(1, got[0]["stats"]["kept_tokens"])
for t in got:
    s = t["stats"]
    check(s["kept_tokens"] <= 32 * streams, "turn %d keeps %d tokens" % (t["turn"], s["kept_tokens"]))
    # chunks are evicted for before they arrive: budget + the decode step's token
    check(s["kv_bytes_peak"] <= (32 + 1) * streams * tok_bytes, "turn %d peak %d" % (t["turn"], s["kv_bytes_peak"]))
check(got[-1]["stats"]["tokens_seen"] > 32 * 4, "the conversation outgrew the budget")

# 3. --max-kv-mib caps the memory however long the conversation
cap = 0.1
got, _ = chat(many, ["--method", "h2o", "--max-kv-mib", str(cap), "-n", "16", "--prefill-chunk", "16"])
check(len(got) == len(many), "8 turns under --max-kv-mib")
for t in got:
    check(t["stats"]["kv_bytes_peak"] <= cap * 1048576, "turn %d peak %d > cap" % (t["turn"], t["stats"]["kv_bytes_peak"]))
check(got[-1]["stats"]["kv_bytes_full"] > cap * 1048576, "the full cache would have exceeded the cap")
# the full cache with a cap too small for the conversation fails clearly
rc, out, err = run(["chat", "-m", model, "--json", "--max-kv-mib", str(cap), "-n", "16"], "\n".join(many) + "\n")
check(rc == 1 and "capacity" in err, "full cache over --max-kv-mib: rc %d, %s" % (rc, err))

# 4. /reset starts afresh: the first question gets the first answer again
got, err = chat([turns[0], turns[1], "/stats", "/reset", turns[0]], ["-n", str(N)])
check(len(got) == 3 and got[2]["ids"] == got[0]["ids"], "/reset")
check("KV " in err and "of" in err, "/stats prints KV memory: " + err)

# 5. /save after two turns, --load in a new process, the third turn: the
# same ids as the uninterrupted conversation (and generate's cache files)
import os
import tempfile
tmp = tempfile.mkdtemp()
f = os.path.join(tmp, "conv.kvc")
flags = ["--method", "kvcVK", "--num-recent", "8", "--num-heavy", "24", "-n", "16", "--prefill-chunk", "16"]
whole, _ = chat(turns, flags)
first, err = chat(turns[:2] + ["/save " + f], flags)
check("saved " in err, "/save: " + err)
rest, _ = chat(turns[2:], flags[:0] + ["-n", "16", "--prefill-chunk", "16", "--load", f])
check(len(whole) == 3 and len(rest) == 1 and rest[0]["ids"] == whole[2]["ids"],
      "turn 3 after /save + --load: %s vs %s" % (rest and rest[0]["ids"], whole and whole[2]["ids"]))
check(rest and rest[0]["stats"]["tokens_seen"] == whole[2]["stats"]["tokens_seen"], "tokens seen after --load")
# /load in a running session replaces its conversation
again, _ = chat(["Something else entirely.", "/load " + f, turns[2]], flags)
check(len(again) == 2 and again[1]["ids"] == whole[2]["ids"], "/load mid-session")
# a corrupt file is a clear error, the session ends with 1 (piped)
with open(f, "r+b") as fh:
    fh.seek(200)
    b = fh.read(1)
    fh.seek(200)
    fh.write(bytes([b[0] ^ 1]))
rc, out, err = run(["chat", "-m", model, "--load", f], "hi\n")
check(rc == 1 and "corrupt" in err, "corrupt --load: %d %s" % (rc, err))
rc, out, err = run(["chat", "-m", model], "/load " + f + "\n")
check(rc == 1 and "corrupt" in err, "corrupt /load: %d %s" % (rc, err))
# generate: the prompt read once and saved, then a question in a new process
doc = tokenize("<|user|>\nThe secret number of the lantern is 4817. Remember it.<|end|>\n<|assistant|>\nOK")
q = tokenize("<|end|>\n<|user|>\nWhat is the secret number?<|end|>\n<|assistant|>\n", special=False)
g = os.path.join(tmp, "doc.kvc")
gflags = ["--method", "snapkv", "--num-recent", "4", "--num-heavy", "12", "--prefill-chunk", "16"]
rc, out, err = run(["generate", "-m", model, "--prompt-ids", ",".join(map(str, doc)), "-n", "0",
                    "--save-cache", g] + gflags)
check(rc == 0, "generate --save-cache: " + err)
cont = generate(q, ["--load-cache", g, "--prefill-chunk", "16"], 16)
ref, _ = chat(["/load " + g, "What is the secret number?"], ["-n", "16", "--prefill-chunk", "16"])
check(ref and cont["ids"] == ref[0]["ids"], "generate --load-cache vs chat /load: %s vs %s" %
      (cont["ids"], ref and ref[0]["ids"]))
for name in os.listdir(tmp):
    os.remove(os.path.join(tmp, name))
os.rmdir(tmp)

# 6. usage errors
check(run(["chat", "-m", model, "--bogus"])[0] == 2, "unknown flag: exit 2")
check(run(["chat"])[0] == 2, "no model: exit 2")
check(run(["chat", "-m", model, "--max-kv-mib", "1", "--cache-ratio", "0.1", "--num-recent", "4"], "hi\n")[0] == 1,
      "--max-kv-mib with a ratio fails")

print("chat_cli: %d failures" % failures)
sys.exit(1 if failures else 0)
