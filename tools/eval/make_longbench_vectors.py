#!/usr/bin/env python3
"""Regenerates the LongBench metric test vectors from the reference scorer.

    /usr/bin/python3 tools/eval/make_longbench_vectors.py   (repository root)

Writes tests/data/longbench/metrics/<metric>.jsonl: one line per
(prediction, answer) pair with the reference score as a float hex string
("score"; rouge also "exact", the score without the recursion limit, and
"raised"), and numpy.jsonl (score lists with round(100 * np.mean(x), 2)).
Needs python3-numpy, python3-fuzzywuzzy, python3-levenshtein, python3-jieba.
"""
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import longbench_ref as ref  # noqa: E402

OUT = os.path.join("tests", "data", "longbench", "metrics")
N = 2000

EN_WORDS = ("the a an The A AN THE apple banana cherry river bank money paris london "
            "alice bob report summary meeting budget policy agency data model cache "
            "token attention year years yes no unanswerable 1990 42 7 3.5 an' a_b the_ "
            "théâtre CAFÉ straße İstanbul ΟΔΟΣ ΣΑΣ Σ ΑΣ.Σ ΜΑΣ' Москва ДОМ résumé naïve "
            "coöperate ǅungla ﬁne ＡＢＣ".split())
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["…", "—", "“", "”", "«", "»", "。", "，"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\u3000", "\xa0", "\u2003", "\x1c", "\u2028", "\u0085"]
DIGITS = list("0123456789") + ["٣", "５", "९", "੬", "𝟖", "²", "½", "Ⅻ"]
ZH_WORDS = ("我们 今天 北京 上海 会议 总结 讨论 问题 答案 中华人民共和国 经济 发展 "
            "研究 人工智能 数据 模型 记录 领导 公司 市场 价格 提高 部门 工作 "
            "计划 项目 学生 老师 学校 教育 医院 医生 手机 电脑 互联网 新闻 体育 "
            "财经 科技 娱乐 房产 汽车 段落 摘要 第 一 二 三 的 了 是 在 和 也 "
            "不 有 这 个 人 说 就 都 很 我 你 他 她 它 李明 王小红 张伟 "
            "Python GPU AI 2023年 5月 10日").split()
ZH_PUNCT = list("，。！？；：、“”《》（）【】…—.,!?") + [" ", "\n"]


def rnd_text(r, pool, n_words, punct=0.1, space_pool=SPACES, digit=0.05, dots=0.0):
    out = []
    for _ in range(n_words):
        x = r.random()
        if x < punct:
            out.append(r.choice(PUNCT))
        elif x < punct + digit:
            out.append("".join(r.choice(DIGITS) for _ in range(r.randint(1, 3))))
        else:
            out.append(r.choice(pool))
        if r.random() < dots:
            out.append(".")
        out.append(r.choice(space_pool) if r.random() < 0.3 else " ")
    s = "".join(out)
    if r.random() < 0.3:
        s = s.strip()
    return s


def special_strings(r):
    return ["", " ", ".", "...", "!!!", " . . ", "\n", "\n\n", "the", "a an the", "An", "_",
            "！？。", "Σ", "ΑΣ", "ΑΣ Σ", "İ", "ǅ", "\u3000", "١٢٣", "12", "Paragraph 3",
            "Paragraph ٣", "段落5", ".a.b.c.", "a.b", "x . y"]


def write(name, rows):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} vectors")


def hexf(x):
    return float(x).hex()


def pairs(r, make_pred, make_gt, specials):
    out = [(a, b) for a in specials for b in specials[:8]]
    while len(out) < N:
        out.append((make_pred(r), make_gt(r)))
    return out


def gen_qa_f1(r):
    sp = special_strings(r)
    rows = []
    for p, g in pairs(r, lambda r: rnd_text(r, EN_WORDS, r.choice([0, 1, 2, 3, 5, 8, 20, 60, 400])),
                      lambda r: rnd_text(r, EN_WORDS, r.choice([1, 2, 3, 5])), sp):
        rows.append({"pred": p, "gt": g, "score": hexf(ref.qa_f1(p, g))})
    return rows


def gen_rouge(r):
    rows = []
    sp = special_strings(r)
    pool = EN_WORDS[:40]

    def mk(r):
        return rnd_text(r, pool, r.choice([0, 1, 3, 10, 30, 80, 200]), punct=0.05,
                        dots=r.choice([0.0, 0.05, 0.2]))
    for p, g in pairs(r, mk, mk, sp):
        rows.append((p, g))
    # Around the recursion limit: one matching first word, then a run of
    # words the reference lacks: the walk takes len(run) + 2 calls.
    for k in (980, 986, 987, 988, 989, 990, 1200):
        run = " ".join(f"w{i}" for i in range(k - 1))
        rows.append((f"alpha {run}", "alpha beta"))
        rows.append((f"Intro. alpha {run}. End", "alpha beta. End"))
        rows.append(("alpha beta gamma", f"alpha {run}"))
    # Long run-on texts (2,000 words, no "."), and long multi-sentence ones.
    for _ in range(4):
        a = rnd_text(r, pool, 2000, punct=0.0, digit=0.0)
        b = rnd_text(r, pool, 2000, punct=0.0, digit=0.0)
        rows.append((a, b))
        rows.append((a.replace(" ", ". ", 40), b.replace(" ", ". ", 60)))
    out = []
    for p, g in rows:
        try:
            ref.rouge_l_raw(p, g)
            raised = False
        except ref.RougeRaised:
            raised = True
        out.append({"pred": p, "gt": g, "score": hexf(ref.rouge(p, g)),
                    "exact": hexf(ref.rouge(p, g, exact=True)), "raised": raised})
    return out


def gen_classification(r):
    base = ["Abbreviation", "Animal", "Color", "Description", "Definition", "Entity",
            "Event", "Food", "Human being", "Human", "Location", "City", "Country",
            "Number", "Date", "Distance", "Money", "Order", "Other location", "Other",
            "体育", "财经", "科技", "财经科技", "a", "ab", "abc", ""]
    rows = []
    while len(rows) < N:
        classes = r.sample(base, r.randint(0, 12))
        if r.random() < 0.2 and classes:
            classes.append(r.choice(classes))  # duplicates: remove() drops the first
        gt = r.choice(classes) if classes and r.random() < 0.9 else r.choice(base)
        words = [r.choice(base + EN_WORDS[:10]) for _ in range(r.randint(0, 6))]
        p = r.choice([" ", ", ", "\n", ""]).join(words)
        rows.append({"pred": p, "gt": gt, "classes": classes,
                     "score": hexf(ref.classification(p, gt, all_classes=classes))})
    # The quirk by hand: "Human" is dropped, "Human being" after it is skipped.
    for p, gt, cl in [("Human being", "Human being", ["Human", "Human being"]),
                      ("Human being Human", "Human being", ["Human", "Hu", "Human being"]),
                      ("ab abc", "abc", ["a", "ab", "abc"]),
                      ("ab abc", "abc", ["ab", "a", "abc"]),
                      ("xyz", "abc", ["a", "a", "abc"])]:
        rows.append({"pred": p, "gt": gt, "classes": cl,
                     "score": hexf(ref.classification(p, gt, all_classes=cl))})
    return rows


def num_text(r, n):
    parts = []
    for _ in range(n):
        x = r.random()
        if x < 0.4:
            parts.append("".join(r.choice(DIGITS[:10] if r.random() < 0.8 else DIGITS)
                                 for _ in range(r.randint(1, 2))))
        elif x < 0.6:
            parts.append(f"Paragraph {r.randint(0, 31)}")
        elif x < 0.7:
            parts.append(f"段落{r.randint(0, 31)}")
        else:
            parts.append(r.choice(EN_WORDS + PUNCT))
    return r.choice(["", " ", ", ", "\n"]).join(parts)


def gen_numbers(r, kind):
    rows = []
    while len(rows) < N:
        p = num_text(r, r.choice([0, 1, 2, 3, 6, 20]))
        if kind == "retrieval":
            g = r.choice(["Paragraph ", "Paragraph ", "Paragraph", "paragraph "]) + \
                str(r.randint(0, 31)) + r.choice(["", " ", "x", "5"])
            if r.random() < 0.1:
                g = "See Paragraph x then Paragraph " + r.choice(["12", "٣", "07"])
            fn = ref.retrieval
        elif kind == "retrieval_zh":
            g = r.choice(["段落", "段落", "段 落"]) + str(r.randint(0, 31))
            if r.random() < 0.1:
                g = "段落x 段落" + r.choice(["12", "٣"])
            fn = ref.retrieval_zh
        else:
            g = r.choice([str(r.randint(0, 40)), "٣", "07", "3.0", ""])
            fn = ref.count
        # Predictions that name the answer's number, alone or among others.
        if r.random() < 0.5:
            import re as _re
            m = _re.findall(r"\d+", g)
            want = m[0] if m else g
            extra = [num_text(r, 1) for _ in range(r.choice([0, 0, 1, 2, 4]))]
            p = r.choice([" ", ", ", "\n"]).join([r.choice(["", "Paragraph ", "段落", "is "]) + want]
                                                 + extra + [want] * r.choice([0, 1, 2]))
        try:
            s = fn(p, g)
        except IndexError:
            continue  # the answer has no "Paragraph N": Python raises (tested apart)
        rows.append({"pred": p, "gt": g, "score": hexf(s)})
    return rows


CODE = ["def f(x):", "    return x + 1", "int main() {", "// comment", "# comment",
        "x = y  # note", "```python", "print('héllo')", "for (i = 0; i < n; i++) {", "}",
        "self.cache = {}", "", "    ", "return a//b", "url = 'http://x'", "数据 = 1",
        "\tindent", "a=b", "a = b", "System.out.println(\"x\");"]


def gen_code(r):
    rows = []
    sp = ["", "\n", "\n\n", "#", "`", "//"]
    for a in sp:
        for b in sp + ["x"]:
            rows.append((a, b))
    while len(rows) < N:
        lines = [r.choice(CODE) for _ in range(r.randint(0, 5))]
        p = r.choice(["", "\n", "\n\n", " \n"]) + "\n".join(lines)
        if r.random() < 0.05:
            p = "x = " + "".join(r.choice("abcdefgh _+*/") for _ in range(3000))
        g = r.choice(CODE) if r.random() < 0.8 else r.choice(lines or [""])
        if r.random() < 0.1:
            g = g + r.choice(["", " ", "1", "é"])
        rows.append((p, g))
    return [{"pred": p, "gt": g, "score": hexf(ref.code_sim(p, g))} for p, g in rows]


def zh_text(r, n, dots=0.0):
    out = []
    for _ in range(n):
        x = r.random()
        out.append(r.choice(ZH_PUNCT) if x < 0.12 else r.choice(ZH_WORDS))
        if r.random() < dots:
            out.append(".")
    return "".join(out)


def gen_zh(r, kind):
    rows = []
    sp = ["", " ", "。", "，！", "北京", "ABC abc", "\n"]
    for a in sp:
        for b in sp:
            rows.append((a, b))
    while len(rows) < N:
        if kind == "qa_f1_zh":
            rows.append((zh_text(r, r.choice([0, 1, 2, 5, 10, 30])),
                         zh_text(r, r.choice([1, 2, 4]))))
        else:
            d = r.choice([0.0, 0.02, 0.1])
            rows.append((zh_text(r, r.choice([0, 2, 10, 40, 150]), d),
                         zh_text(r, r.choice([5, 20, 80, 300]), d)))
    out = []
    for p, g in rows:
        row = {"pred": p, "gt": g}
        if kind == "qa_f1_zh":
            row["score"] = hexf(ref.qa_f1_zh(p, g))
        else:
            row["score"] = hexf(ref.rouge_zh(p, g))
            row["exact"] = hexf(ref.rouge_zh(p, g, exact=True))
        out.append(row)
    return out


def gen_numpy(r):
    rows = []
    for _ in range(300):
        n = r.choice([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 128, 129, 200, 257])
        xs = [r.choice([0.0, 1.0, 0.5, 1 / 3, 2 / 3, 0.25, 0.125, r.random(), r.random() / 7])
              for _ in range(n)]
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = round(100 * np.mean(xs), 2)
        rows.append({"x": [hexf(x) for x in xs], "score": hexf(v)})
    return rows


def main():
    r = random.Random(20240611)
    write("qa_f1", gen_qa_f1(r))
    write("rouge", gen_rouge(r))
    write("classification", gen_classification(r))
    write("retrieval", gen_numbers(r, "retrieval"))
    write("retrieval_zh", gen_numbers(r, "retrieval_zh"))
    write("count", gen_numbers(r, "count"))
    write("code_sim", gen_code(r))
    write("qa_f1_zh", gen_zh(r, "qa_f1_zh"))
    write("rouge_zh", gen_zh(r, "rouge_zh"))
    write("numpy", gen_numpy(r))


if __name__ == "__main__":
    main()
