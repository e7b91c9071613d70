"""Golden ids of the kvp-mini tokenizer from its SentencePiece model.

Writes tests/data/tokenizer/kvp-mini/golden.txt for the conformance corpus,
in the format of gen_goldens.mjs: "<s>" id + sp.encode(text), a tab, "?"
(SentencePiece has no decode that keeps special tokens), a tab,
sp.decode(ids) ("=" when equal to the text). Strings holding the text of one
of the tokenizer's added tokens are written as "SKIP": SentencePiece matches
user-defined symbols inside the text while tokenizer.json (like every HF
tokenizer) splits them out first, so the two legitimately differ there.

Usage: /usr/bin/python3 gen_kvp_mini_golden.py TOKENIZER_DIR CORPUS OUT
(TOKENIZER_DIR holds tokenizer.model and tokenizer.json)
"""
import json
import os
import sys

import sentencepiece as spm


def unescape(line):
    out = bytearray()
    b = line.encode("utf-8")
    i = 0
    while i < len(b):
        if b[i] == 0x5C and i + 1 < len(b) and b[i + 1] == 0x5C:
            out.append(0x5C)
            i += 2
        elif b[i] == 0x5C and i + 1 < len(b) and b[i + 1] == 0x78:
            out.append(int(b[i + 2:i + 4].decode(), 16))
            i += 4
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def escape(s):
    out = []
    for ch in s:
        c = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif c < 0x20 or c == 0x7F:
            out.append("\\x%02X" % c)
        else:
            out.append(ch)
    return "".join(out)


def main():
    tok_dir, corpus, out = sys.argv[1:4]
    sp = spm.SentencePieceProcessor(model_file=os.path.join(tok_dir, "tokenizer.model"))
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        added = [a["content"] for a in json.load(f)["added_tokens"]]
    with open(corpus, encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    rows, n_skip = [], 0
    for line in lines:
        text = unescape(line).decode("utf-8", errors="replace")
        if any(a in text for a in added):
            rows.append("SKIP")
            n_skip += 1
            continue
        ids = [sp.bos_id()] + sp.encode(text)
        dec = sp.decode(ids[1:])
        if dec == text:
            d = "="
        elif text and dec.endswith(text):
            d = "+" + escape(dec[: len(dec) - len(text)])
        else:
            d = escape(dec)
        rows.append(" ".join(map(str, ids)) + "\t?\t" + d)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    print("%d strings, %d skipped (hold added-token text)" % (len(rows) - n_skip, n_skip))


if __name__ == "__main__":
    main()
