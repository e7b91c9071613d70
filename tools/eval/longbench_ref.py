#!/usr/bin/env python3
"""Reference LongBench scoring in Python: the oracle of the C scorer.

A transcription of the LongBench metrics as the project's evaluation spec
describes them (qa_f1, classification with its list-removal quirk,
retrieval, count), the `rouge` package's ROUGE-L (1.0.1: "."-split
sentences, summary-level union LCS over word sets, rebuilt along the same
back-tracking path, with the recursion limit that makes long sentence pairs
score 0.0), fuzzywuzzy's fuzz.ratio (the real package, with
python-Levenshtein) for code_sim, and jieba's cut (the real package) for
the Chinese metrics. Also scores a whole prediction folder like LongBench's
eval.py (used by the end-to-end test):

    /usr/bin/python3 tools/eval/longbench_ref.py score SAVE_DIR EXP [--e]

prints the result dict as JSON (the C scorer's result.json content).
"""
import collections
import json
import os
import re
import string
import sys

# Nested _recon calls the package can make inside LongBench's eval.py before
# Python's recursion limit raises (C: KVLB_ROUGE_MAX_RECON_CALLS).
ROUGE_MAX_RECON_CALLS = 989

CN_PUNCT = ("！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】"
            "〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.")


def normalize_en(s):
    s = s.lower()
    s = "".join(c for c in s if c not in string.punctuation)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def normalize_zh(s):
    s = s.lower()
    drop = set(string.punctuation + CN_PUNCT)
    s = "".join(c for c in s if c not in drop)
    return "".join(s.split())


def token_f1(pred, gt):
    common = collections.Counter(pred) & collections.Counter(gt)
    same = sum(common.values())
    if same == 0:
        return 0
    p = 1.0 * same / len(pred)
    r = 1.0 * same / len(gt)
    return (2 * p * r) / (p + r)


def qa_f1(pred, gt, **_):
    return token_f1(normalize_en(pred).split(), normalize_en(gt).split())


_jieba = None


def cut(s):
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(60)
        _jieba = jieba
    return list(_jieba.cut(s, cut_all=False))


def qa_f1_zh(pred, gt, **_):
    p = [t for t in (normalize_zh(x) for x in cut(pred)) if len(t) > 0]
    g = [t for t in (normalize_zh(x) for x in cut(gt)) if len(t) > 0]
    return token_f1(p, g)


class RougeRaised(Exception):
    pass


def rouge_sentences(text):
    return [" ".join(piece.split()) for piece in text.split(".") if len(piece) > 0]


def lcs_words(x, y, exact):
    """The words on the LCS path the package walks back from (len(x),
    len(y)): diagonal on equal words, up when the cell above is strictly
    larger, else left; and the number of nested calls that walk takes."""
    nx, ny = len(x), len(y)
    t = [[0] * (ny + 1) for _ in range(nx + 1)]
    for i in range(1, nx + 1):
        ti, tp, xi = t[i], t[i - 1], x[i - 1]
        for j in range(1, ny + 1):
            ti[j] = tp[j - 1] + 1 if xi == y[j - 1] else max(tp[j], ti[j - 1])
    words, i, j, calls = [], nx, ny, 1
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            words.append(x[i - 1])
            i, j = i - 1, j - 1
        elif t[i - 1][j] > t[i][j - 1]:
            i -= 1
        else:
            j -= 1
        calls += 1
    if not exact and calls > ROUGE_MAX_RECON_CALLS:
        raise RougeRaised("recursion")
    return set(words)


def rouge_l_raw(hyp, ref, exact=False):
    """ROUGE-L F of Rouge().get_scores([hyp], [ref], avg=True); raises
    RougeRaised where the package raises."""
    hs, rs = rouge_sentences(hyp), rouge_sentences(ref)
    if not hs or not rs:
        raise RougeRaised("empty")
    hw = [s.split(" ") for s in hs]
    rw = [s.split(" ") for s in rs]
    m = len(set(w for s in rw for w in s))
    n = len(set(w for s in hw for w in s))
    union = set()
    for x in rw:
        for y in hw:
            union |= lcs_words(x, y, exact)
    llcs = len(union)
    r, p = llcs / m, llcs / n
    return 2.0 * ((p * r) / (p + r + 1e-8))


def rouge(pred, gt, exact=False, **_):
    try:
        return rouge_l_raw(pred, gt, exact)
    except RougeRaised:
        return 0.0


def rouge_zh(pred, gt, exact=False, **_):
    return rouge(" ".join(cut(pred)), " ".join(cut(gt)), exact)


def classification(pred, gt, all_classes=None, **_):
    found = [c for c in all_classes if c in pred]
    for term in found:  # removing while iterating skips the next item: kept on purpose
        if term in gt and term != gt:
            found.remove(term)
    return 1.0 / len(found) if gt in found else 0.0


def number_match(pred, want):
    nums = re.findall(r"\d+", pred)
    right = sum(1 for x in nums if str(x) == str(want))
    return 0.0 if len(nums) == 0 else float(right / len(nums))


def retrieval(pred, gt, **_):
    return number_match(pred, re.findall(r"Paragraph (\d+)", gt)[0])


def retrieval_zh(pred, gt, **_):
    return number_match(pred, re.findall(r"段落(\d+)", gt)[0])


def count(pred, gt, **_):
    return number_match(pred, gt)


def code_sim(pred, gt, **_):
    from fuzzywuzzy import fuzz
    line = ""
    for ln in pred.lstrip("\n").split("\n"):
        if "`" not in ln and "#" not in ln and "//" not in ln:
            line = ln
            break
    return fuzz.ratio(line, gt) / 100


METRICS = {
    "qa_f1": qa_f1, "qa_f1_zh": qa_f1_zh, "rouge": rouge, "rouge_zh": rouge_zh,
    "classification": classification, "retrieval": retrieval,
    "retrieval_zh": retrieval_zh, "count": count, "code_sim": code_sim,
}

DATASET_METRIC = {
    "narrativeqa": "qa_f1", "qasper": "qa_f1", "multifieldqa_en": "qa_f1",
    "multifieldqa_zh": "qa_f1_zh", "hotpotqa": "qa_f1", "2wikimqa": "qa_f1",
    "musique": "qa_f1", "dureader": "rouge_zh", "gov_report": "rouge",
    "qmsum": "rouge", "multi_news": "rouge", "vcsum": "rouge_zh",
    "trec": "classification", "triviaqa": "qa_f1", "samsum": "rouge",
    "lsht": "classification", "passage_retrieval_en": "retrieval",
    "passage_count": "count", "passage_retrieval_zh": "retrieval_zh",
    "lcc": "code_sim", "repobench-p": "code_sim",
}

FIRST_LINE = ("trec", "triviaqa", "samsum", "lsht")


def sample_score(dataset, pred, answers, all_classes):
    if dataset in FIRST_LINE:
        pred = pred.lstrip("\n").split("\n")[0]
    fn = METRICS[DATASET_METRIC[dataset]]
    score = 0.
    for gt in answers:
        score = max(score, fn(pred, gt, all_classes=all_classes))
    return score


def score_folder(path, e):
    """eval.py over one experiment folder: {file name: score}."""
    import numpy as np
    out = {}
    for name in sorted(os.listdir(path)):
        if not name.endswith("jsonl"):
            continue
        dataset = name.split("-")[0]
        if dataset == "repobench":
            dataset = "repobench-p"
        preds, answers, lengths, all_classes = [], [], [], None
        with open(os.path.join(path, name), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                preds.append(d["pred"])
                answers.append(d["answers"])
                all_classes = d["all_classes"]
                if "length" in d:
                    lengths.append(d["length"])
        if not preds:
            continue
        if e:
            buckets = {"0-4k": [], "4-8k": [], "8k+": []}
            for p, a, n in zip(preds, answers, lengths):
                s = sample_score(dataset, p, a, all_classes)
                buckets["0-4k" if n < 4000 else "4-8k" if n < 8000 else "8k+"].append(s)
            with np.errstate(all="ignore"):
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[name] = {k: round(100 * np.mean(v), 2) for k, v in buckets.items()}
        else:
            total = 0.
            for p, a in zip(preds, answers):
                total += sample_score(dataset, p, a, all_classes)
            out[name] = round(100 * total / len(preds), 2)
    return out


def main(argv):
    if len(argv) >= 4 and argv[1] == "score":
        e = "--e" in argv[4:]
        path = os.path.join(argv[2], "pred_e" if e else "pred", argv[3])
        print(json.dumps(score_folder(path, e), sort_keys=True, indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
