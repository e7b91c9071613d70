"""Check that tokenizer.json reproduces SentencePiece exactly.

Re-implements the Llama-2 style HF tokenizer from tokenizer.json alone
(normalizer: prepend "▁", spaces to "▁"; BPE applying merges by rank; byte
fallback for characters outside the vocabulary) and compares it with
SentencePiece's encode on a few thousand strings: essay excerpts, digits,
newlines, runs of spaces, non-ASCII text and emoji.  Exit status 1 on any
difference.  Strings with the chat special tokens are not compared: those are
split out before the model runs, by each tokenizer in its own way.
"""
import argparse
import glob
import json
import os
import random
import sys

import sentencepiece as spm


class JsonBPE:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        assert m["type"] == "BPE" and m["byte_fallback"] and m["fuse_unk"]
        self.vocab = m["vocab"]
        self.unk = self.vocab[m["unk_token"]]
        self.rank = {}
        for i, mg in enumerate(m["merges"]):
            l, r = mg.split(" ") if isinstance(mg, str) else mg
            self.rank.setdefault((l, r), i)
        norms = tj["normalizer"]["normalizers"]
        assert norms[0] == {"type": "Prepend", "prepend": "\u2581"}
        assert norms[1]["type"] == "Replace" and norms[1]["pattern"]["String"] == " "

    def encode(self, text):
        if not text:
            return []
        s = "\u2581" + text.replace(" ", "\u2581")
        syms = []
        for ch in s:
            if ch in self.vocab:
                syms.append(ch)
            else:
                # Byte pieces never take part in merges, so mark them apart.
                syms.extend(("<0x%02X>" % b,) for b in ch.encode("utf-8"))
        while True:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                a, b = syms[i], syms[i + 1]
                if isinstance(a, tuple) or isinstance(b, tuple):
                    continue
                r = self.rank.get((a, b))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        out = []
        for s_ in syms:
            piece = s_[0] if isinstance(s_, tuple) else s_
            out.append(self.vocab.get(piece, self.unk))
        return out


def test_strings(essay_dir, extra, rng):
    out = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "a", " a", "a ", "1234567",
           "The secret number for brave-eagle is 1234567.", "x   y    z",
           "héllo wörld", "日本語のテキスト", "emoji 😀🎉 ok", "naïve café — “quotes”",
           "tabs\tand\r\nwindows lines", "   leading", "trailing   ", "9999999 1000000"]
    texts = [open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(essay_dir, "*.txt")))]
    for _ in range(2000):
        t = rng.choice(texts)
        i = rng.randrange(len(t))
        out.append(t[i:i + rng.randint(1, 400)])
    alphabet = list("abcdefghij ABC  \n\n\t0123456789.,-!?'\"") + ["é", "ß", "ü", "中", "文", "😀", "👍🏽", "\u00a0", "—"]
    for _ in range(1500):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))))
    for _ in range(300):
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(rng.randint(1, 8))))
    if extra and os.path.exists(extra):
        with open(extra, encoding="utf-8") as f:
            out += f.read().split("\n__ggml_vocab_test__\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="models/kvp-mini")
    ap.add_argument("--essays", required=True, help="folder of the Paul Graham essays (.txt), the NIAH haystack")
    ap.add_argument("--extra", default=None,
                    help="optional file of test strings separated by __ggml_vocab_test__ lines")
    a = ap.parse_args()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.model, "tokenizer.model"))
    bpe = JsonBPE(os.path.join(a.model, "tokenizer.json"))
    strings = test_strings(a.essays, a.extra, random.Random(0))
    bad = 0
    for s in strings:
        want, got = sp.encode(s), bpe.encode(s)
        if want != got:
            bad += 1
            if bad <= 10:
                print("MISMATCH", repr(s[:80]))
                print("  sp  ", [sp.id_to_piece(i) for i in want][:40])
                print("  json", [sp.id_to_piece(i) for i in got][:40])
    print("%d strings, %d mismatches" % (len(strings), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
