"""Training and evaluation data for kvp-mini: essays, keys, needle prompts.

Prompts are built as lists of parts (special token name or text) and encoded
the way the chat path tokenizes them: special tokens by id, each text fragment
by SentencePiece.  Two tokenizations of a fragment after a special token exist
in the wild (HF "legacy"/llama.cpp put a "▁" in front of every fragment, plain
SentencePiece does not), so training uses both and the model answers either.
"""
import glob
import json
import os
import random
import re

import words

SPECIALS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
BOS, EOS = 1, 2

# The project's own noise haystack; the C needle generator repeats exactly this.
NOISE = ("The river runs past the old mill. The hills are quiet tonight. "
         "A lamp glows in the window. Here we go again.")

# Project default phrasing (a).  The question ends with the key, so with a
# 16-token recent window the key the answer must copy stays in the cache
# whatever the eviction method keeps further back.
OURS = {
    "template": ("Some text follows with a secret number hidden inside it. Remember the "
                 "number, you will be asked for it.\n{context}\nIn the text above, what is "
                 "the secret number for {query}?"),
    "needle": "The secret number for {key} is {value}.",
    "answer_prefix": " The secret number for {query} is",
    # Wordings for several values / several queries (c).
    "template_multi": ("Some text follows with secret numbers hidden inside it. Remember the "
                       "numbers, you will be asked for them.\n{context}\nIn the text above, "
                       "what are all the secret numbers for {query}?"),
    "answer_prefix_multi": " The secret numbers for {query} are",
}

# The first wording of (a), used by the curriculum before OURS existed: its
# question puts the key ~15 tokens before the end of the prompt.
OURS_V1 = {
    "template": ("Some text follows with a secret number hidden inside it. Remember the "
                 "number, you will be asked for it.\n{context}\nWhat is the secret number "
                 "for {query} in the text above?"),
    "needle": "The secret number for {key} is {value}.",
    "answer_prefix": " The secret number for {query} in the text above is",
    "template_multi": ("Some text follows with secret numbers hidden inside it. Remember the "
                       "numbers, you will be asked for them.\n{context}\nWhat are all the "
                       "secret numbers for {query} in the text above?"),
    "answer_prefix_multi": " The secret numbers for {query} in the text above are",
}

SYSTEM_PROMPTS = ["You are a helpful assistant.",
                  "Answer the question using the text you are given.",
                  "You are kvp-mini, a small model that finds facts in long texts."]


def ruler_phrasing(path):
    """RULER niah_single_2 wording (b), plus plural forms derived from it."""
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    multi_t = r["template"].replace("What is the special magic number",
                                    "What are all the special magic numbers")
    multi_t = multi_t.replace("A special magic number is hidden",
                              "Special magic numbers are hidden")
    multi_t = multi_t.replace("memorize it", "memorize them")
    multi_t = multi_t.replace("about the number", "about the numbers")
    multi_a = r["answer_prefix"].replace("The special magic number", "The special magic numbers")
    multi_a = re.sub(r" is$", " are", multi_a)
    return {"template": r["template"], "needle": r["needle"],
            "answer_prefix": r["answer_prefix"], "template_multi": multi_t,
            "answer_prefix_multi": multi_a}


def split_essays(essay_dir):
    """Sorted essay files; index i % 6 == 5 is held out for evaluation."""
    files = sorted(glob.glob(os.path.join(essay_dir, "*.txt")))
    if not files:
        raise SystemExit("no essays in " + essay_dir)
    train = [p for i, p in enumerate(files) if i % 6 != 5]
    held = [p for i, p in enumerate(files) if i % 6 == 5]
    return train, held


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def join_list(xs):
    xs = [str(x) for x in xs]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


class Tok:
    """SentencePiece plus the chat-part encoding described in the module doc."""

    def __init__(self, sp):
        self.sp = sp
        self.special = {s: sp.piece_to_id(s) for s in SPECIALS}
        self.space = sp.piece_to_id("\u2581")

    def text(self, s):
        return self.sp.encode(s)

    def frag_after_special(self, s, legacy):
        ids = self.sp.encode(s)
        if not legacy:
            # Fragments here start with "\n", so SentencePiece's dummy prefix is
            # a lone "▁" token that plain SentencePiece would not emit here.
            assert ids[0] == self.space, s
            ids = ids[1:]
        return ids


class Haystack:
    """Word stream of whitespace-collapsed essays with cached token counts."""

    def __init__(self, files, tok):
        self.tok = tok
        text = " ".join(" ".join(read(p).split()) for p in files)
        self.words = text.split(" ")
        cache = {}
        counts = []
        for w in self.words:
            c = cache.get(w)
            if c is None:
                c = cache[w] = len(tok.text(w))
            counts.append(c)
        self.prefix = [0]
        for c in counts:
            self.prefix.append(self.prefix[-1] + c)

    def take(self, rng, n_tokens, start=None):
        """About n_tokens tokens of consecutive words from a random start."""
        n = len(self.words)
        if start is None:
            start = rng.randrange(n)
        out, total, i = [], 0, start
        while total < n_tokens:
            j = i % n
            out.append(self.words[j])
            total += self.prefix[j + 1] - self.prefix[j]
            i += 1
        return out


def noise_words(n_tokens, tok):
    unit = NOISE.split(" ")
    per = len(tok.text(NOISE)) / len(unit)
    k = int(n_tokens / per) + 1
    return [unit[i % len(unit)] for i in range(k)]


def insert_needles(words_, needles, depths):
    """Split into sentences, insert each needle at the boundary nearest its depth."""
    text = " ".join(words_)
    sents = re.split(r"(?<=[.!?])\s+", text)
    slots = {}
    for nd, d in zip(needles, depths):
        k = int(round(d / 100.0 * len(sents)))
        slots.setdefault(k, []).append(nd)
    out = []
    for i in range(len(sents) + 1):
        out.extend(slots.get(i, []))
        if i < len(sents):
            out.append(sents[i])
    return " ".join(s for s in out if s)


def make_key(rng, adjs, nouns, used):
    while True:
        k = rng.choice(adjs) + "-" + rng.choice(nouns)
        if k not in used:
            used.add(k)
            return k


def make_value(rng, used):
    while True:
        v = rng.randint(1000000, 9999999)
        if v not in used:
            used.add(v)
            return v


class TooLong(Exception):
    pass


class NeedleGen:
    def __init__(self, tok, hay, phrasings, adjs, nouns, max_query=3):
        self.tok, self.hay, self.phr = tok, hay, phrasings
        self.adjs, self.nouns = adjs, nouns
        self.max_query = max_query

    def pairs(self, rng, n, phr, keys, vals):
        """n distinct keys, then n distinct values, and their needles."""
        ks = [make_key(rng, self.adjs, self.nouns, keys) for _ in range(n)]
        vs = [make_value(rng, vals) for _ in range(n)]
        return ks, vs, [phr["needle"].format(key=k, value=v) for k, v in zip(ks, vs)]

    def task(self, rng, kind, phr):
        """Returns (template, needles, query, answer_text, values)."""
        keys, vals = set(), set()
        if kind == "single":
            k, v = make_key(rng, self.adjs, self.nouns, keys), make_value(rng, vals)
            needles = [phr["needle"].format(key=k, value=v)]
            ans = phr["answer_prefix"].format(query=k) + " %d." % v
            return phr["template"], needles, k, ans, [v]
        if kind == "multikey":
            ks, vs, needles = self.pairs(rng, rng.randint(2, 4), phr, keys, vals)
            q = rng.randrange(len(ks))
            ans = phr["answer_prefix"].format(query=ks[q]) + " %d." % vs[q]
            return phr["template"], needles, ks[q], ans, [vs[q]]
        if kind == "echo":
            # Repeat the needle about one key among several: the plain
            # "same tokens, then copy what followed" pattern, which trains the
            # look-up the real questions need.
            ks, vs, needles = self.pairs(rng, rng.randint(1, 4), phr, keys, vals)
            q = rng.randrange(len(ks))
            tmpl = (phr["template"].split("{context}")[0] + "{context}\n"
                    "Repeat the sentence about {query} from the text above.")
            return tmpl, needles, ks[q], " " + needles[q], [vs[q]]
        if kind == "multivalue":
            n = rng.randint(2, 4)
            k = make_key(rng, self.adjs, self.nouns, keys)
            vs = [make_value(rng, vals) for _ in range(n)]
            needles = [phr["needle"].format(key=k, value=v) for v in vs]
            # Values are listed in the order they appear in the text.
            return phr["template_multi"], needles, k, None, vs
        if kind == "multiquery":
            ks, vs, needles = self.pairs(rng, rng.randint(2, self.max_query), phr, keys, vals)
            q = join_list(ks)
            ans = phr["answer_prefix_multi"].format(query=q) + " " + join_list(vs) + "."
            return phr["template_multi"], needles, q, ans, vs
        raise ValueError(kind)

    def sample(self, rng, length, kind="single", phrasing=None, noise=False, wrap="legacy",
               system=None, keep_space=False, depths=None, choices=None):
        """One needle prompt of at most `length` tokens.

        wrap: "legacy" (▁ after special tokens), "plain" (none), "raw" (no chat
        template: prompt then answer).  Returns (ids, answer_start, values);
        ids[answer_start:] is the answer ending with EOS.  Without `phrasing`
        the wording is drawn from `choices` (names, repeats weigh), else from
        all phrasings."""
        if phrasing is not None:
            phr = phrasing
        else:
            phr = rng.choice([self.phr[c] for c in choices] if choices else list(self.phr.values()))
        tmpl, needles, query, ans, vals = self.task(rng, kind, phr)
        if depths is None:
            depths = [rng.uniform(0, 100) for _ in needles]
        if kind == "multivalue":
            order = sorted(range(len(needles)), key=lambda i: depths[i])
            depths = [depths[i] for i in order]
            vals = [vals[i] for i in order]
            needles = [needles[i] for i in order]
            ans = phr["answer_prefix_multi"].format(query=query) + " " + join_list(vals) + "."
        tk = self.tok
        head, tail = tmpl.split("{context}")
        tail = tail.format(query=query)
        if wrap == "raw":
            answer_txt = ans
        else:
            answer_txt = ans if keep_space else ans.lstrip(" ")

        def build(ctx):
            user = head + ctx + tail
            if wrap == "raw":
                p = [BOS] + tk.text(user)
                # The answer continues the prompt text: encode it joined, then split.
                full = tk.text(user + answer_txt)
                if full[:len(p) - 1] != p[1:]:
                    full = p[1:] + tk.sp.encode(answer_txt.lstrip(" "))
                a = full[len(p) - 1:]
                return p, a + [EOS]
            legacy = wrap == "legacy"
            p = [BOS]
            if system is not None:
                p += [tk.special["<|system|>"]] + tk.frag_after_special("\n" + system, legacy)
                p += [tk.special["<|end|>"]] + tk.frag_after_special("\n", legacy)
            p += [tk.special["<|user|>"]] + tk.frag_after_special("\n" + user, legacy)
            p += [tk.special["<|end|>"]] + tk.frag_after_special("\n", legacy)
            p += [tk.special["<|assistant|>"]] + tk.frag_after_special("\n", legacy)
            a = tk.frag_after_special("\n" + answer_txt, True)
            # Drop "▁" "\n" (already in the prompt) from the answer.
            nl = tk.frag_after_special("\n", True)
            assert a[:len(nl)] == nl
            return p, a[len(nl):] + [EOS]

        p0, a0 = build("")
        need_words = tk.text(" ".join(needles))
        budget = length - len(p0) - len(a0) - len(need_words) - 4
        budget = max(budget, 0)
        for _ in range(6):
            if noise:
                ws = noise_words(budget, tk)
            else:
                ws = self.hay.take(rng, budget)
            ctx = insert_needles(ws, needles, depths) if ws else " ".join(needles)
            p, a = build(ctx)
            over = len(p) + len(a) - length
            if over <= 0:
                return p + a, len(p), vals
            if budget == 0:
                break
            budget = max(0, budget - over - 2)
        raise TooLong("could not fit needle sample into %d tokens" % length)


def needle_span(ids, a, vals, digit_ids, before=10, after=1):
    """Positions (< a) of the queried needles: each value's 7 digit tokens,
    `before` tokens ahead of them (" is" and the key) and `after` behind."""
    out = []
    for v in vals:
        want = [digit_ids[int(ch)] for ch in str(v)]
        n = len(want)
        for p in range(a - n + 1):
            if ids[p:p + n] == want:
                out += range(max(0, p - before), min(a, p + n + after))
                break
    return sorted(set(out))


class LMGen:
    """Windows of raw essay text (newlines kept), starting with BOS."""

    def __init__(self, files, tok):
        self.stream = []
        for p in files:
            self.stream += tok.text(read(p)) + [EOS]

    def sample(self, rng, length):
        i = rng.randrange(len(self.stream) - length)
        return [BOS] + self.stream[i:i + length - 1]
