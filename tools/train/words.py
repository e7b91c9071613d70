"""Word lists for needle keys ("adjective-noun").

Training keys combine TRAIN_ADJECTIVES x TRAIN_NOUNS; evaluation keys combine
EVAL_ADJECTIVES x EVAL_NOUNS.  The two pairs of lists share no word, so no
evaluation key (nor any of its words used in a key) is seen in training.
"""

TRAIN_ADJECTIVES = """
able acid angry aware bad basic bent big bitter black blue bold brave brief
bright broad broken brown busy calm cheap clean clear clever close cold cool
crazy cruel curly damp dark dead deep dirty dry dull dusty eager early easy
empty equal even exact fair fake false famous fancy fast fat few fierce fine
firm flat fluffy foggy fond free fresh full funny gentle giant glad golden
good grand gray great green grumpy happy hard harsh heavy high hollow honest
hot huge humble hungry icy idle jolly kind large late lazy light little
lively long loose loud lovely low lucky mad major messy mild minor modern
""".split()

TRAIN_NOUNS = """
apple arm army baby bag ball band bank barn basket bath beach bean bear bed
bell belt bird blade boat body bone book boot bottle box boy brain branch
bread brick bridge brush bucket button cabin cake camera candle canvas car
card carpet cart castle cat chain chair chalk cheese chest chicken church
circle clock cloud coat coin collar comb cork cottage cow crate crown cup
curtain cushion desk diamond dinner dog doll door dragon drawer dress drum
duck eagle egg elbow engine face farm feather fence field finger fish flag
flame floor flower fork fox frog garden gate ghost glass glove goat
""".split()

EVAL_ADJECTIVES = """
nervous noble odd orange pale plain polite proud purple quick quiet rapid
rare raw rich rough round royal rusty sad salty scary sharp shiny short shy
silent silly simple sleepy slow small smooth soft sour spicy
""".split()

EVAL_NOUNS = """
hammer harbor helmet horse island jacket kettle kitchen ladder lake lantern
lemon library lion lizard map market mirror monkey moon mountain needle
nest ocean orchard owl palace parrot pencil piano pillow pocket puzzle
rabbit radio
""".split()

assert not (set(TRAIN_ADJECTIVES) | set(TRAIN_NOUNS)) & (set(EVAL_ADJECTIVES) | set(EVAL_NOUNS))


def c_generator_words(repo_root):
    """The words of the keys `kvprune needle gen` draws (src/eval/needle_gen.c),
    which the evaluation of the shipped model uses: kept out of training too."""
    import re
    with open(repo_root + "/src/eval/needle_gen.c", encoding="utf-8") as f:
        src = f.read()
    out = set()
    for name in ("kvev_niah_adjectives", "kvev_niah_nouns"):
        body = re.search(name + r"\[\] = \{(.*?)NULL\}", src, re.S).group(1)
        out |= set(re.findall(r'"([a-z]+)"', body))
    return out
