"""Train the kvp-mini SentencePiece BPE tokenizer and write its HF files.

Writes into --out: tokenizer.model, tokenizer.json (what transformers'
LlamaConverter produces for a Llama-2 style SentencePiece BPE model) and
tokenizer_config.json (with the kvp-mini chat template).
Only the training essays are used (the held-out ones never are).
"""
import argparse
import json
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvp_data  # noqa: E402

VOCAB_SIZE = 2048
SPECIALS = kvp_data.SPECIALS

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def train_spm(essay_dir, out_dir, vocab_size=VOCAB_SIZE):
    train_files, _ = kvp_data.split_essays(essay_dir)
    lines = []
    for path in train_files:
        with open(path, encoding="utf-8") as f:
            lines.extend(l for l in f.read().split("\n") if l.strip())
    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        user_defined_symbols=SPECIALS,
        add_dummy_prefix=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        # The default sentence length cap would silently drop long lines.
        max_sentence_length=1 << 16,
        num_threads=2,
        minloglevel=2,
    )
    os.remove(prefix + ".vocab")
    return prefix + ".model"


def extract_merges(sp):
    """Merges in the order transformers' SentencePieceExtractor gives them:
    every split of every piece into two pieces of the vocabulary, sorted by the
    score of the merged piece (descending, stable), ties by the ids of the parts."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for i in range(n):
        piece = sp.id_to_piece(i)
        local = []
        for j in range(1, len(piece)):
            left, right = piece[:j], piece[j:]
            if left in vocab and right in vocab:
                local.append((left, right, sp.get_score(i)))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return vocab, [(l, r) for l, r, _ in merges]


def tokenizer_json(sp):
    vocab, merges = extract_merges(sp)
    added = []
    for i in range(sp.get_piece_size()):
        if sp.is_control(i) or sp.is_unknown(i) or sp.id_to_piece(i) in SPECIALS:
            added.append({"id": i, "content": sp.id_to_piece(i), "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True})
    bos = sp.id_to_piece(sp.bos_id())
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [sp.bos_id()], "tokens": [bos]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": sp.id_to_piece(sp.unk_id()),
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True,
            "vocab": vocab,
            "merges": [l + " " + r for l, r in merges],
        },
    }


def tokenizer_config(sp, max_len):
    dec = {}
    for t in tokenizer_json(sp)["added_tokens"]:
        dec[str(t["id"])] = {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                               "single_word", "special")}
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": dec,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": max_len,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "use_default_system_prompt": False,
    }


def write_hf_tokenizer_files(model_path, out_dir, max_len):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(sp), f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(sp, max_len), f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--essays", required=True, help="folder of the Paul Graham essays (.txt), the NIAH haystack")
    ap.add_argument("--out", default="models/kvp-mini")
    ap.add_argument("--max-len", type=int, default=4096)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = train_spm(a.essays, a.out)
    write_hf_tokenizer_files(model, a.out, a.max_len)
    print("wrote", model)


if __name__ == "__main__":
    main()
