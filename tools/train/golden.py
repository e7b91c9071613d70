"""Reference logits of the shipped kvp-mini for checking the C engine.

Loads models/kvp-mini/model.safetensors (F16) widened to float32 and runs the
model in float32 without autocast.  Writes {"prompt_ids", "greedy_ids",
"logits", "prompt_text"} (prompt_text: the rendered chat text, without
BOS, that prompt_ids tokenize): logits row 0 is at the last prompt position, row k
(k >= 1) is after feeding greedy_ids[k-1]; floats keep full float32 precision.

The default prompt is a chat-wrapped needle question (project phrasing) over
the project's own noise haystack, tokenized the HF/llama.cpp way ("▁" after
each special token), with BOS: ~300 tokens, no essay text.
With --prompt-ids the logits for any ids are computed instead (for tests that
run torch next to the engine).
"""
import argparse
import json
import os
import random
import re
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import kvp_data  # noqa: E402
import words  # noqa: E402


def default_prompt(model_dir, length=330):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    tok = kvp_data.Tok(sp)
    gen = kvp_data.NeedleGen(tok, None, {"ours": kvp_data.OURS},
                             words.EVAL_ADJECTIVES, words.EVAL_NOUNS)
    ids, a, _ = gen.sample(random.Random(7), length, kind="single", phrasing=kvp_data.OURS,
                           noise=True, wrap="legacy", depths=[50.0])
    ids = ids[:a]
    # The "▁" after each special token decodes to a space that is not in the
    # rendered text; check the text re-tokenizes to the same ids.
    text = sp.decode(ids)
    for s in kvp_data.SPECIALS:
        text = text.replace(s + " ", s)
    assert legacy_encode(tok, text) == ids
    return ids, text


def legacy_encode(tok, text):
    """BOS, special tokens by id, every other fragment with a leading "▁"."""
    pat = "(" + "|".join(re.escape(s) for s in kvp_data.SPECIALS) + ")"
    out = [kvp_data.BOS]
    for part in re.split(pat, text):
        if part in tok.special:
            out.append(tok.special[part])
        elif part:
            out += tok.text(part)
    return out


@torch.no_grad()
def run(model, prompt_ids, n):
    caches = [dict() for _ in model.layers]
    logits = model(torch.tensor([prompt_ids]), 0, caches)[0, -1]
    rows, greedy, pos = [logits], [], len(prompt_ids)
    for _ in range(n):
        t = int(logits.argmax())
        greedy.append(t)
        logits = model(torch.tensor([[t]]), pos, caches)[0, -1]
        pos += 1
        rows.append(logits)
    return greedy, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/kvp-mini")
    ap.add_argument("--out", default="tests/data/kvp-mini/golden.json", help="'-' for stdout")
    ap.add_argument("--prompt-ids", help="comma-separated ids instead of the default prompt")
    ap.add_argument("--n", type=int, default=16, help="greedy tokens")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = export.load(a.model)
    if a.prompt_ids:
        prompt, text = [int(x) for x in a.prompt_ids.split(",")], None
    else:
        prompt, text = default_prompt(a.model)
    greedy, rows = run(model, prompt, a.n)
    out = {"prompt_ids": prompt, "greedy_ids": greedy,
           "logits": [[float(x) for x in r.float().tolist()] for r in rows]}
    if text is not None:
        out["prompt_text"] = text
    s = json.dumps(out, separators=(",", ":"))
    if a.out == "-":
        print(s)
    else:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(s + "\n")
        print("wrote %s: %d prompt ids, greedy %s" % (a.out, len(prompt), greedy))


if __name__ == "__main__":
    main()
