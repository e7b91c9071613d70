"""The Python binding against independent references: generate against the
CLI's ids (kvprune generate --json) on the bundled model, the scorer against
the numpy goldens of tests/data/cache/scorer.json, and bad arguments raising.
Usage: test_binding.py KVPRUNE_CLI   (run from the repository root, with
KVPRUNE_LIBRARY naming the shared library and bindings/python on PYTHONPATH)."""
import json
import subprocess
import sys

import kvprune

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


cli = sys.argv[1]
model_path = "models/kvp-mini.gguf"
model = kvprune.Model(model_path)
check(model.info["arch"] == "llama", "model info arch")
check(len(model.info["eos_ids"]) >= 1 and model.info["name"] != "", "model info eos ids, name")
check(kvprune.version().count(".") == 2, "version")

# generate: the same ids and text as the CLI, for several methods and budgets.
runs = [
    ({"method": "full"}, []),
    ({"method": "h2o", "num_recent": 4, "num_heavy": 4}, ["--num-recent", "4", "--num-heavy", "4"]),
    ({"method": "kvcVK", "num_recent": 4, "cache_ratio": 0.5, "decode_evict": False},
     ["--num-recent", "4", "--cache-ratio", "0.5", "--no-decode-evict"]),
    ({"method": "snapkv", "recent_ratio": 0.2, "heavy_ratio": 0.2},
     ["--recent-ratio", "0.2", "--heavy-ratio", "0.2"]),
    ({"method": "h2o", "num_recent": 4, "num_heavy": 6, "streaming": True, "num_sink": 2},
     ["--num-recent", "4", "--num-heavy", "6", "--streaming", "--num-sink", "2"]),
    ({"method": "kvcVK", "num_recent": 4, "num_heavy": 6, "budget_alloc": "adaptive",
      "safeguard": 0.3, "layer_alloc": "pyramid", "pyramid_beta": 5.0},
     ["--num-recent", "4", "--num-heavy", "6", "--budget-alloc", "adaptive", "--safeguard", "0.3",
      "--layer-alloc", "pyramid", "--pyramid-beta", "5"]),
]
prompt = "Summarize the main benefits of cache pruning in one sentence."
for kw, flags in runs:
    cmd = [cli, "generate", "-m", model_path, "--prompt", prompt, "-n", "24", "--json",
           "--method", kw["method"]] + flags
    ref = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    got = model.generate(prompt, max_new_tokens=24, **kw)
    check(got.prompt_ids == ref["prompt_ids"], "%s: prompt ids" % kw)
    check(got.ids == ref["ids"], "%s: ids %s vs CLI %s" % (kw, got.ids, ref["ids"]))
    check(got.text == ref["text"], "%s: text" % kw)
    check(got.stats["kv_bytes"] == ref["stats"]["kv_bytes"], "%s: kv_bytes" % kw)

# A reusable cache: reset between sequences gives the same ids again; ids in.
cache = kvprune.load_kv_cache(model, method="h2o", num_recent=4, num_heavy=4)
a = model.generate(prompt, max_new_tokens=8, cache=cache)
cache.reset()
check(cache.stats["n_seen"] == 0, "reset empties the cache")
b = model.generate(a.prompt_ids, max_new_tokens=8, cache=cache)
check(a.ids == b.ids, "cache reuse")
check(len(cache.kept_positions(0, 0)) == 8, "kept positions within budget")
# adaptive budgets: the per-layer statistics are the streams' own lengths
ada = kvprune.Cache(model, "h2o", num_recent=4, num_heavy=4, budget_alloc="adaptive")
model.generate(prompt, max_new_tokens=8, cache=ada)
n_streams = ada.stats["n_streams"]
for layer in range(ada.stats["n_layer"]):
    lens = [len(ada.kept_positions(layer, s)) for s in range(n_streams)]
    ls = ada.layer_stats(layer)
    check((ls["min_kept"], ls["max_kept"], ls["total_kept"], ls["num_heavy"]) ==
          (min(lens), max(lens), sum(lens), 4), "layer %d stats %s vs %s" % (layer, ls, lens))
    check(sum(lens) == n_streams * 8, "layer %d holds streams x budget" % layer)
ada.close()
for text, flags, kw in ((prompt, [], {}), ("<s> plain", ["--no-special", "--no-parse-special"],
                                          {"add_special": False, "parse_special": False})):
    ref = json.loads(subprocess.run([cli, "tokenize", "-m", model_path, "--json", "--text", text]
                                    + flags, check=True, capture_output=True, text=True).stdout)
    check(model.tokenize(text, **kw) == ref["ids"], "tokenize %r %s" % (text, flags))
seen = []
c = model.generate(prompt, max_new_tokens=8, on_token=lambda t: seen.append(t) or len(seen) < 3)
full8 = model.generate(prompt, max_new_tokens=8).ids
check(c.ids == seen == full8[:3], "on_token returning False stops after that token")

# The scorer over the numpy goldens (same inputs and tolerances as the C test).
import numpy as np  # noqa: E402

doc = json.load(open("tests/data/cache/scorer.json"))
n_cases = n_sel = 0
max_rel = 0.0
for cs in doc["cases"]:
    pb = doc["problems"][cs["kind"]]
    nq, nkv, d = pb["n_q"], pb["n_kv"], pb["head_dim"]
    attn = np.array(pb["attn"], dtype=np.float32).reshape(nq, nkv)
    logits = np.array(pb["logits"], dtype=np.float32).reshape(nq, nkv)
    values = np.array(pb["values"], dtype=np.float32).reshape(nkv, d)
    outputs = np.array(pb["outputs"], dtype=np.float32).reshape(nq, d)
    want = np.array(cs["scores"], dtype=np.float64)
    for sel in cs["selections"]:
        scores, kept = kvprune.score_attention(attn, logits, values, outputs, cs["method"],
                                               sel["n_recent"], sel["n_heavy"], sel["num_sink"],
                                               cs["window"])
        rel = np.abs(scores - want) / np.maximum(np.abs(want), 1e-3)
        max_rel = max(max_rel, float(rel.max()))
        check(rel.max() <= 1e-4, "scorer case %s %s window %d" % (cs["kind"], cs["method"],
                                                                  cs["window"]))
        if sel["margin"] >= 1e-4:
            n_sel += 1
            check(kept.tolist() == sel["kept"], "kept %s %s" % (cs["kind"], cs["method"]))
    n_cases += 1
print("scorer: %d cases, %d selections compared, max relative score diff %.3g"
      % (n_cases, n_sel, max_rel))

# score_tokens from q, k, v: numpy's softmax attention (float64) of the
# causal problem reproduces its attention rows, so the scores agree.
rng = np.random.default_rng(0)
q, k, v = rng.standard_normal((4, 8)), rng.standard_normal((10, 8)), rng.standard_normal((10, 8))
s1, k1 = kvprune.score_tokens(q, k, v, "h2o", n_recent=2, n_heavy=3)
z = q @ k.T / np.sqrt(8)
z[np.arange(10)[None, :] > np.arange(6, 10)[:, None]] = -np.inf
attn = np.exp(z - z.max(1, keepdims=True))
attn /= attn.sum(1, keepdims=True)
check(np.allclose(s1, attn.sum(0), rtol=1e-5, atol=1e-6), "score_tokens h2o = column sums")
check(k1.tolist()[-2:] == [8, 9] and len(k1) == 5, "score_tokens keeps the recent window")

# Bad arguments raise, with the library's message.
def raises(fn, exc, text, what):
    try:
        fn()
    except exc as e:
        check(text in str(e), "%s: message %r lacks %r" % (what, str(e), text))
        return
    check(False, "%s: no %s raised" % (what, exc.__name__))


raises(lambda: kvprune.Model("no/such/model.gguf"), kvprune.KvpError, "no/such/model.gguf",
       "missing model")
raises(lambda: model.generate(prompt, method="nope", num_recent=4, num_heavy=4),
       kvprune.KvpError, "kvcVK", "unknown method")
raises(lambda: model.generate(prompt, method="h2o"), kvprune.KvpError, "budget", "no budget")
raises(lambda: model.cache("h2o", num_recent=4, num_heavy=4, kv_type="f8"), ValueError, "f8",
       "kv_type")
raises(lambda: model.cache("h2o", num_recent=4, num_heavy=4, streaming=True, num_sink=-1),
       kvprune.KvpError, "num_sink", "num_sink")
raises(lambda: kvprune.score_tokens(q, k[:, :4], v, "h2o", 1, 1), ValueError, "q [n_q, d]",
       "score shapes")
raises(lambda: kvprune.score_attention(attn, attn, v, attn @ v, "nope", 1, 1), kvprune.KvpError,
       "nope", "scorer method")

print("test_binding: %d checks, %d failed" % (checks, len(failures)))
sys.exit(1 if failures else 0)
