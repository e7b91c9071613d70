"""Torch-side needle accuracy of an exported kvp-mini (or a checkpoint).

Single needle, held-out essays and keys, greedy decoding, depths spread evenly
over 0-100%, bf16 autocast as in training.  The acceptance figures are the C
engine's; this is the training framework's view of the same task.
"""
import argparse
import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import kvp_data  # noqa: E402
import kvp_model  # noqa: E402
import train  # noqa: E402
import words  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="models/kvp-mini")
    ap.add_argument("--ckpt", help="a train.py checkpoint instead of the exported folder")
    ap.add_argument("--essays", required=True, help="folder of the Paul Graham essays (.txt), the NIAH haystack")
    ap.add_argument("--ruler", required=True, help="RULER niah_single_2 task facts as JSON (template, needle, answer_prefix)")
    ap.add_argument("--lengths", default="2048,4096")
    ap.add_argument("--phrasings", default="ours,ruler")
    ap.add_argument("--wrap", default="legacy", choices=["legacy", "plain", "raw"])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.ckpt:
        ck = torch.load(a.ckpt)
        model = kvp_model.Model(kvp_model.Config.from_hf(ck["cfg"]))
        model.load_state_dict(ck["model"])
    else:
        model = export.load(a.model)
    tok = kvp_data.Tok(spm.SentencePieceProcessor(model_file=os.path.join(a.model, "tokenizer.model")))
    _, held = kvp_data.split_essays(a.essays)
    phr = {"ours": kvp_data.OURS, "ruler": kvp_data.ruler_phrasing(a.ruler)}
    gen = kvp_data.NeedleGen(tok, kvp_data.Haystack(held, tok), phr,
                             words.EVAL_ADJECTIVES, words.EVAL_NOUNS)
    res = {}
    for name in a.phrasings.split(","):
        for L in [int(x) for x in a.lengths.split(",")]:
            res["%s_%d_%s" % (name, L, a.wrap)] = train.evaluate(model, tok, gen, L, a.n, phr[name],
                                                                 wrap=a.wrap, seed=a.seed)
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
