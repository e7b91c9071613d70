#!/usr/bin/env python3
"""Writes the small LongBench-format fixture of the end-to-end test.

    /usr/bin/python3 tools/eval/make_longbench_fixture.py   (repository root)

tests/data/longbench/data/<dataset>.jsonl (2 samples for each kind of
dataset: QA, Chinese QA, summaries, classification, first-line tasks,
retrieval, count, code) and <dataset>_e.jsonl (LongBench-E, lengths in all
three buckets), with the fields of THUDM/LongBench (input, context, answers,
length, dataset, language, all_classes, _id), and tests/data/longbench/config/
(dataset2prompt.json, dataset2maxlen.json, model2maxlen.json: our own short
prompt wordings, short generations so the test runs in seconds).
"""
import json
import os
import random

ROOT = os.path.join("tests", "data", "longbench")
WORDS = ("the river bank opened a small office near the old market and every morning "
         "clerks counted coins while traders argued about prices of grain salt and wool "
         "a committee met on tuesday to review the budget of the harbour and decided "
         "to repair the northern wall before winter storms arrived").split()
ZH = "我们 今天 在 北京 召开 会议 讨论 经济 发展 问题 公司 计划 提高 产品 质量 学生 老师 学校".split()

PROMPTS = {
    "hotpotqa": "Read the passages and answer with a few words.\n\n{context}\n\nQuestion: {input}\nAnswer:",
    "multifieldqa_zh": "阅读下面的文字并简短回答。\n\n{context}\n\n问题：{input}\n回答：",
    "gov_report": "Summarise the report below.\n\nReport:\n{context}\n\nSummary:",
    "vcsum": "请总结下面的会议记录。\n{context}\n\n总结：",
    "trec": "Give the type of the last question. Examples:\n\n{context}\n{input}",
    "triviaqa": "Answer as the examples do.\n\n{context}\n\n{input}",
    "samsum": "Summarise the dialogue in one line, like the examples.\n\n{context}\n\n{input}",
    "passage_count": "How many different paragraphs are below?\n\n{context}\n\nThe count is: ",
    "passage_retrieval_en": "Which paragraph is the summary from?\n\n{context}\n\nSummary: {input}\n\nThe answer is: ",
    "passage_retrieval_zh": "下面的摘要出自哪一段？\n\n{context}\n\n摘要：{input}\n\n答案是：",
    "lcc": "Complete the code.\n{context}Next line of code:\n",
    "repobench-p": "Complete the code.\n{context}{input}Next line of code:\n",
}
MAXGEN = {"hotpotqa": 8, "multifieldqa_zh": 8, "gov_report": 16, "vcsum": 12, "trec": 6,
          "triviaqa": 8, "samsum": 10, "passage_count": 4, "passage_retrieval_en": 6,
          "passage_retrieval_zh": 6, "lcc": 10, "repobench-p": 10}
MODEL2MAXLEN = {"kvp-mini": 256, "Llama-3-8B-Instruct-8k": 7500}
TREC_CLASSES = ["Abbreviation", "Animal", "Color", "Description", "Entity", "Human being",
                "Human", "Location", "City", "Number", "Date"]


def text(r, n):
    out = []
    for i in range(n):
        out.append(r.choice(WORDS))
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out) + "."


def zh(r, n):
    return "".join(r.choice(ZH) + ("。" if i % 9 == 8 else "") for i in range(n))


def sample(r, ds, i, length):
    lang = "zh" if ds in ("multifieldqa_zh", "vcsum", "passage_retrieval_zh") else "en"
    n = [60, 420][i % 2]  # the second sample's prompt is longer than 256 tokens
    s = {"input": "", "context": "", "answers": [], "length": length, "dataset": ds,
         "language": lang, "all_classes": None, "_id": f"{ds}-{i}"}
    if ds == "hotpotqa":
        s.update(context=text(r, n), input="What did the committee decide?",
                 answers=["to repair the northern wall", "repair the wall"])
    elif ds == "multifieldqa_zh":
        s.update(context=zh(r, n), input="会议在哪里召开？", answers=["北京"])
    elif ds in ("gov_report",):
        s.update(context=text(r, n), answers=[text(r, 30)])
    elif ds == "vcsum":
        s.update(context=zh(r, n), answers=[zh(r, 25)])
    elif ds == "trec":
        ex = "\n".join(f"Question: {text(r, 6)}\nType: {r.choice(TREC_CLASSES)}" for _ in range(n // 12))
        s.update(context=ex, input="Question: Who counted the coins?\nType:",
                 answers=["Human being"], all_classes=TREC_CLASSES)
    elif ds == "triviaqa":
        ex = "\n\n".join(f"Passage: {text(r, 10)}\nQuestion: {text(r, 5)}\nAnswer: {r.choice(WORDS)}"
                         for _ in range(n // 20))
        s.update(context=ex, input="Passage: the bank opened.\nQuestion: what opened?\nAnswer:",
                 answers=["the bank", "bank"])
    elif ds == "samsum":
        ex = "\n\n".join(f"Dialogue: Ann: {text(r, 6)}\nBen: {text(r, 5)}\nSummary: {text(r, 6)}"
                         for _ in range(n // 20))
        s.update(context=ex, input="Dialogue: Ann: the market opens.\nBen: good.\nSummary:",
                 answers=["Ann says the market opens."])
    elif ds == "passage_count":
        paras = [text(r, 8) for _ in range(4)]
        ps = paras + paras[:2]
        r.shuffle(ps)
        s.update(context="\n\n".join(f"Paragraph {k + 1}: {p}" for k, p in enumerate(ps)),
                 answers=["4"])
    elif ds == "passage_retrieval_en":
        paras = [text(r, n // 6) for _ in range(5)]
        s.update(context="\n\n".join(f"Paragraph {k + 1}: {p}" for k, p in enumerate(paras)),
                 input=paras[2][:80], answers=["Paragraph 3"])
    elif ds == "passage_retrieval_zh":
        paras = [zh(r, n // 6) for _ in range(5)]
        s.update(context="\n\n".join(f"段落{k + 1}：{p}" for k, p in enumerate(paras)),
                 input=paras[1][:20], answers=["段落2"])
    elif ds in ("lcc", "repobench-p"):
        lines = [f"    total_{k} = total_{k - 1} + price[{k}]  # {r.choice(WORDS)}" for k in range(1, n // 8)]
        code = "def tally(price):\n    total_0 = 0\n" + "\n".join(lines) + "\n"
        s.update(context=code, answers=[f"    total_{n // 8} = total_{n // 8 - 1} + price[{n // 8}]"])
        if ds == "repobench-p":
            s["input"] = "# the next running total\n"
    return s


def main():
    r = random.Random(7)
    data = os.path.join(ROOT, "data")
    cfg = os.path.join(ROOT, "config")
    os.makedirs(data, exist_ok=True)
    os.makedirs(cfg, exist_ok=True)
    for ds in PROMPTS:
        with open(os.path.join(data, ds + ".jsonl"), "w", encoding="utf-8") as f:
            for i in range(2):
                f.write(json.dumps(sample(r, ds, i, 300 + 900 * i), ensure_ascii=False) + "\n")
    for ds in ("hotpotqa", "gov_report", "trec", "passage_count", "lcc", "repobench-p"):
        with open(os.path.join(data, ds + "_e.jsonl"), "w", encoding="utf-8") as f:
            for i, length in enumerate((1200, 3999, 4000, 9000)):
                f.write(json.dumps(sample(r, ds, i, length), ensure_ascii=False) + "\n")
    for name, obj in (("dataset2prompt", PROMPTS), ("dataset2maxlen", MAXGEN),
                      ("model2maxlen", MODEL2MAXLEN)):
        with open(os.path.join(cfg, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=4)
            f.write("\n")


if __name__ == "__main__":
    main()
