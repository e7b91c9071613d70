#!/usr/bin/env python3
"""Generates the jieba conformance corpus and its reference cuts.

The strings are synthesised deterministically (fixed seed) from jieba's own
dictionary words and HMM characters plus character lists below, so no text
is copied from anywhere. Each is cut by python3-jieba (jieba.lcut, i.e.
cut_all=False, HMM=True) and written as one JSON line:

    {"t": text, "w": [length of each word in code points]}

Two files: cuts.jsonl (jieba's own dictionary and HMM) and mini_cuts.jsonl
(strings over the small hand-made dictionary and HMM tables in mini/, cut by
jieba with those loaded in place of its own).

Usage (python3-jieba must be importable; on Debian: apt install python3-jieba):
    python3 tools/jieba_goldens.py tests/data/jieba
"""
import json
import logging
import os
import random
import sys

import jieba
from jieba import finalseg

jieba.setLogLevel(logging.WARNING)
jieba.initialize()
DT = jieba.dt
FREQ = DT.FREQ

R = random.Random(20240601)

JIEBA_DIR = os.path.dirname(jieba.__file__)


def load_words():
    words = []
    with open(os.path.join(JIEBA_DIR, "dict.txt"), encoding="utf-8") as f:
        for line in f:
            w, fr = line.split(" ")[:2]
            words.append((w, int(fr)))
    return words


WORDS = load_words()
HAN_WORDS = [w for w, _ in WORDS if all("\u4e00" <= c <= "\u9fd5" for c in w)]
COMMON_WORDS = [w for w, f in WORDS if f >= 1000 and all("\u4e00" <= c <= "\u9fd5" for c in w)]
ASCII_WORDS = [w for w, _ in WORDS if any(ord(c) < 128 for c in w)]
EMIT = finalseg.emit_P
HMM_CHARS = sorted(set(EMIT["S"]) | set(EMIT["B"]))
HMM_CHARS = [c for c in HMM_CHARS if "\u4e00" <= c <= "\u9fd5"]
# Han characters jieba's range covers but neither the HMM nor the dictionary knows.
KNOWN = set(HMM_CHARS) | set("".join(HAN_WORDS))
UNKNOWN_HAN = [chr(c) for c in range(0x4E00, 0x9FD6) if chr(c) not in KNOWN]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
TRANSLIT = "阿巴卡达埃法加哈伊贾卡拉马纳奥帕奎拉萨塔乌瓦沃克西亚扎斯基诺维奇夫森德尔特里布罗曼顿"
PUNCT_FULL = "，。！？；：“”‘’（）【】《》、…—～·「」『』〈〉〔〕％＃＆＊＋－／＠"
PUNCT_HALF = ",.!?;:\"'()[]<>{}/\\|@$^*=~`"
CLASS_ASCII = "+#&._%-"
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\u3000", "\xa0", "\u2028", "\x0b", "\x0c",
          "\x1c", "\x85", "\u2003", "\u200b", " \r\n ", "\r\r\n", "\n\r"]
ASCII_TOKENS = ["GPU", "iPhone", "Python3", "C++", "c++", "c#", "C#", "AT&T", "3.14", "100%",
                "12.5%", "1,000", "2024-01-01", "e-mail", "user_name", "a.b.c", "v1.2.3", "#tag",
                "+86", "50%off", "ABC", "abc123", "x_y-z", "3.", ".5", "..", "1.2.3.4", "0.618",
                "99.9%", "10%%", "A", "b", "7", "COVID-19", "5G", "4K", "H2O", "CO2", "NBA", "ok",
                "OK", "Hello", "world", "tcp/ip", "a+b", "x&y", "100.00", "2.0版", "_", "-", "%",
                "&", "#", "+", ".", "--", "__init__", "T恤", "B超", "CD机", "IP地址", "K歌之王",
                "c语言", "C语言", "cd机", "ip地址", "Ａ", "ＢＣ", "１２３", "ｂ"]
ENGLISH = ["the", "answer", "is", "Model", "GPT-4", "LLaMA", "U.S.", "Dr.", "e.g.", "i.e.",
           "state-of-the-art", "don't", "it's", "50/50", "#1", "C#", "F#", "x86_64", "v2.0",
           "3.0.1", "1e-5", "0x1F", "N/A", "a.m.", "R&D", "Q&A", "100%", "-1", "+1", "A+", "B-",
           "hello_world", "__main__", "foo.bar", "...", "--verbose", "www.example.com"]
CODE = ["http://www.example.com/a_b-c.html?x=1&y=2", "user@example.com", "def f(x):\n    return x+1",
        "int main() { return 0; }", "a = [1, 2, 3]", "print('你好')", "SELECT * FROM t;",
        "<div>中文</div>", "**粗体**", "# 标题\n- 列表", "$x^2$", "C:\\Users\\name", "~/.bashrc",
        "k=v;k2=v2", "1+1=2", "a-b_c.d%e#f&g"]
RARE = ([chr(c) for c in range(0x3400, 0x3420)] +          # CJK extension A
        [chr(c) for c in range(0x9FD6, 0x9FF0)] +          # CJK past jieba's range
        [chr(c) for c in range(0x20000, 0x20010)] +        # extension B (outside the BMP)
        [chr(c) for c in range(0x2A700, 0x2A705)] +
        [chr(c) for c in range(0xF900, 0xF910)] +          # compatibility ideographs
        [chr(c) for c in range(0x2E80, 0x2E90)] +          # radicals
        list("ぁあいうえおかきアイウエオカキ한국어조선말АБВГДабвгαβγδéèàüößñçØ") +
        ["\U0001F600", "\U0001F44D", "\U0001F1E8\U0001F1F3", "\u200d", "\ufeff", "\u0301",
         "e\u0301", "\ufffd", "\U0010FFFD", "\x01", "\x7f"])


def pick_words(k, pool=None):
    pool = pool or (COMMON_WORDS if R.random() < 0.7 else HAN_WORDS)
    return [R.choice(pool) for _ in range(k)]


def han_sentence(lo=2, hi=12):
    return "".join(pick_words(R.randint(lo, hi)))


def hmm_run(lo=2, hi=12):
    return "".join(R.choice(HMM_CHARS) for _ in range(R.randint(lo, hi)))


def name():
    return R.choice(SURNAMES) + "".join(R.choice(GIVEN) for _ in range(R.randint(1, 2)))


def translit():
    return "".join(R.choice(TRANSLIT) for _ in range(R.randint(2, 6)))


def mixed_piece():
    r = R.random()
    if r < 0.35:
        return "".join(pick_words(R.randint(1, 4)))
    if r < 0.5:
        return R.choice(ASCII_TOKENS)
    if r < 0.6:
        return R.choice(PUNCT_FULL + PUNCT_HALF)
    if r < 0.7:
        return R.choice(SPACES)
    if r < 0.8:
        return name()
    if r < 0.87:
        return hmm_run(1, 5)
    if r < 0.93:
        return R.choice(RARE)
    if r < 0.97:
        return R.choice(UNKNOWN_HAN) if UNKNOWN_HAN else R.choice(RARE)
    return R.choice(ASCII_WORDS)


def branches(s):
    """The paths of jieba's __cut_DAG a string takes (to check coverage)."""
    hit = set()
    for blk in jieba.re_han_default.split(s):
        if not blk or not jieba.re_han_default.match(blk):
            continue
        dag = DT.get_DAG(blk)
        route = {}
        DT.calc(blk, dag, route)
        x, buf, n = 0, "", len(blk)
        bufs = []
        while x < n:
            y = route[x][1] + 1
            if y - x == 1:
                buf += blk[x:y]
            else:
                if buf:
                    bufs.append(buf)
                buf = ""
            x = y
        if buf:
            bufs.append(buf)
        for b in bufs:
            if len(b) == 1:
                hit.add("single")
            elif FREQ.get(b):
                hit.add("buffer_is_word")
            else:
                hit.add("hmm")
    return hit


def corpus():
    out = []
    # Edge cases written out.
    out += ["", " ", "\n", "\r\n", "\r", "\t", "中", "a", "。", ".", "-", "%", "a b", "中 文",
            "\r\n\r\n", "\n\r", "中\r\n文", "ABC中文def", "3.14%", "中文3.14%的", "100.5%增长",
            "。。。", "...", "，,", "Ｈｅｌｌｏ世界", "\U00020000中\U00020001", "龘", "鿕鿖鿿",
            "𠀀", "中" * 200, "的" * 50, "a" * 100, "1" * 60, "我来到北京清华大学",
            "他来到了网易杭研大厦", "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
            "永和服装饰品有限公司", "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
            "结过婚的和尚未结过婚的", "AT&T和C++还有c#", "B超T恤", "IP地址ip地址", "\ufeff中文"]
    for _ in range(400):                       # pure Han from dictionary words
        out.append(han_sentence())
    for _ in range(250):                       # names and unknown runs: the HMM path
        parts = []
        for _ in range(R.randint(1, 5)):
            r = R.random()
            parts.append(name() if r < 0.4 else translit() if r < 0.55 else
                         hmm_run() if r < 0.8 else han_sentence(1, 3))
        out.append("".join(parts))
    for _ in range(150):                       # long unknown runs
        out.append(hmm_run(10, 60))
    for _ in range(300):                       # Han + ASCII words and numbers
        parts = []
        for _ in range(R.randint(2, 8)):
            parts.append(R.choice(ASCII_TOKENS) if R.random() < 0.4 else han_sentence(1, 3))
        out.append("".join(parts))
    for _ in range(250):                       # punctuation, both widths
        parts = []
        for _ in range(R.randint(2, 8)):
            parts.append(han_sentence(1, 4))
            parts.append("".join(R.choice(PUNCT_FULL + PUNCT_HALF) for _ in range(R.randint(1, 3))))
        out.append("".join(parts))
    for _ in range(200):                       # whitespace and newlines
        parts = []
        for _ in range(R.randint(2, 8)):
            parts.append(han_sentence(1, 3) if R.random() < 0.6 else R.choice(ASCII_TOKENS))
            parts.append(R.choice(SPACES))
        out.append("".join(parts))
    for _ in range(200):                       # rare and unknown characters
        parts = []
        for _ in range(R.randint(2, 10)):
            r = R.random()
            parts.append(R.choice(RARE) if r < 0.35 else
                         R.choice(UNKNOWN_HAN) if r < 0.55 and UNKNOWN_HAN else
                         han_sentence(1, 2) if r < 0.85 else hmm_run(1, 3))
        out.append("".join(parts))
    for _ in range(350):                       # everything mixed
        out.append("".join(mixed_piece() for _ in range(R.randint(1, 25))))
    for _ in range(200):                       # answer-like: dates, counts, English, code
        parts = []
        for _ in range(R.randint(1, 6)):
            r = R.random()
            if r < 0.25:
                parts.append(R.choice(["%d年%d月%d日" % (R.randint(1900, 2099), R.randint(1, 12), R.randint(1, 31)),
                                       "第%d章" % R.randint(1, 99), "约%d%%" % R.randint(1, 100),
                                       "%d.%d万元" % (R.randint(1, 999), R.randint(0, 9)),
                                       "%d个" % R.randint(0, 10**R.randint(1, 9)),
                                       "%d:%02d" % (R.randint(0, 23), R.randint(0, 59)),
                                       "１２３４５", "二〇二三年", "三百五十六"]))
            elif r < 0.45:
                parts.append(" ".join(R.choice(ENGLISH) for _ in range(R.randint(1, 8))))
            elif r < 0.55:
                parts.append(R.choice(CODE))
            else:
                parts.append(han_sentence(1, 5) + R.choice(["", "，", "。", "：", "\n", " "]))
        out.append("".join(parts))
    for _ in range(24):                        # long paragraphs
        parts = []
        while sum(map(len, parts)) < R.randint(400, 2500):
            parts.append(mixed_piece() if R.random() < 0.3 else han_sentence(3, 10) + R.choice("，。；！？"))
        out.append("".join(parts))
    # Runs of single-character route steps that spell a dictionary word
    # (emitted character by character): searched among short word mixes.
    found = 0
    two_char = [w for w in COMMON_WORDS if len(w) == 2]
    while found < 120:
        s = "".join(R.choice(two_char) for _ in range(R.randint(2, 4)))
        s = s[R.randint(0, 1):]
        if "buffer_is_word" in branches(s):
            out.append(s)
            found += 1
    return out


def mini_corpus(mini_dir):
    """Strings over the fixture's words and HMM characters."""
    words = []
    with open(os.path.join(mini_dir, "dict.txt"), encoding="utf-8") as f:
        for line in f:
            words.append(line.strip().split(" ")[0])
    hmm_chars = "张王李三小丰明红二"
    other = ["C++", "c++", "AT&T", "3.14%", "abc", "x1.5", "1.2.3", "a%b", "-", " ", "\r\n", "\n",
             "，", "。", "𠀀", "𠀀字", "鿖", "龘", "é", "\u3000", "国人", "国", "人", "中"]
    out = ["", "甲乙丙", "天地", "天地人", "张三丰", "王小二", "李明红", "北京大学生活动",
           "中国人民", "我是北京大学的学生", "长江大桥", "学生", "国人", "中国人", "张三", "龘龘",
           "张龘三", "C++和AT&T", "T恤3.14%的", "我\r\n你", "𠀀字", "北京\u3000大学"]
    r = random.Random(7)
    for _ in range(300):
        parts = []
        for _ in range(r.randint(1, 10)):
            x = r.random()
            parts.append(r.choice(words) if x < 0.45 else
                         "".join(r.choice(hmm_chars) for _ in range(r.randint(1, 5))) if x < 0.8 else
                         r.choice(other))
        out.append("".join(parts))
    return out


def cut_with_fixture(mini_dir, texts):
    """jieba.Tokenizer on the fixture dictionary, with finalseg's tables
    swapped for the fixture's (finalseg reads its module globals)."""
    tables = {}
    for name in ("start", "trans", "emit"):
        path = os.path.join(mini_dir, "finalseg", "prob_%s.py" % name)
        ns = {}
        with open(path, encoding="utf-8") as f:
            exec(compile(f.read(), path, "exec"), ns)
        tables[name] = ns["P"]
    saved = finalseg.start_P, finalseg.trans_P, finalseg.emit_P
    finalseg.start_P, finalseg.trans_P, finalseg.emit_P = tables["start"], tables["trans"], tables["emit"]
    try:
        tok = jieba.Tokenizer(os.path.abspath(os.path.join(mini_dir, "dict.txt")))
        return [tok.lcut(t) for t in texts]
    finally:
        finalseg.start_P, finalseg.trans_P, finalseg.emit_P = saved


def write_cuts(path, texts, cuts):
    lines = []
    for t, words in zip(texts, cuts):
        assert "".join(words) == t
        lines.append(json.dumps({"t": t, "w": [len(w) for w in words]}, ensure_ascii=False))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: jieba_goldens.py OUT_DIR (tests/data/jieba)")
    out_dir = sys.argv[1]
    texts = corpus()
    write_cuts(os.path.join(out_dir, "cuts.jsonl"), texts, [jieba.lcut(t) for t in texts])
    seen = {}
    for t in texts:
        for b in branches(t):
            seen[b] = seen.get(b, 0) + 1
    print(f"cuts.jsonl: {len(texts)} strings; strings per path: {dict(sorted(seen.items()))}",
          file=sys.stderr)
    mini_dir = os.path.join(out_dir, "mini")
    mini = mini_corpus(mini_dir)
    write_cuts(os.path.join(out_dir, "mini_cuts.jsonl"), mini, cut_with_fixture(mini_dir, mini))
    print(f"mini_cuts.jsonl: {len(mini)} strings", file=sys.stderr)


if __name__ == "__main__":
    main()
