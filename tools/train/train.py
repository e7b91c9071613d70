"""Train kvp-mini end to end: tokenizer, model, evaluation, export.

  /usr/bin/python3 tools/train/train.py --essays ESSAYS_DIR \
      --ruler RULER_NIAH_JSON --out models/kvp-mini --seed 1234 \
      --work build/kvp-mini-train --eval-every 100 --final-eval-n 20

Curriculum over prompt lengths up to 4096 tokens (PHASES), bf16 autocast
(oneDNN; fp32 CPU matmuls in this torch go through a slow reference BLAS),
AdamW, fixed seed.  Each batch mixes plain language modelling on the training
essays with needle-retrieval prompts; the answer tokens of needle prompts get
their own loss term so the few supervised tokens are not drowned by the
haystack.  --resume continues exactly from WORK/state.pt.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import kvp_data  # noqa: E402
import kvp_model  # noqa: E402
import train_tokenizer  # noqa: E402
import words  # noqa: E402

TOKENS_PER_STEP = 8192


def phase(L, steps, lr0, lr1, p_lm, tokens=TOKENS_PER_STEP, ans_w=1.0, hold=0.0,
          phrasings=("ours_v1", "ruler"), win_w=0.0):
    """One curriculum phase: prompt length, steps, lr held at lr0 for the first
    `hold` fraction then linear to lr1, share of plain language-modelling
    samples, tokens per step, weight of the answer loss against the LM loss,
    and the needle wordings drawn from (names; a repeated name weighs more),
    weight of the observation-window loss (see WINDOW)."""
    return dict(L=L, steps=steps, lr0=lr0, lr1=lr1, p_lm=p_lm, tokens=tokens, ans_w=ans_w,
                hold=hold, phrasings=phrasings, win_w=win_w)


# Retrieval needs a sharp attention on one earlier token.  At initialisation
# attention is uniform over the context, so the gradient towards the needle
# shrinks with the prompt length: at 256+ tokens the first run stayed at
# chance on the digits for 15M tokens, while at 64-128 tokens the look-up
# appears within ~100 steps.  So the curriculum starts at 128 tokens and
# doubles once retrieval exists; the lr decays once at 2048 and at the end.
PHASES = [
    phase(128, 300, 1e-3, 1e-3, 0.1),
    phase(256, 200, 1e-3, 1e-3, 0.1),
    phase(512, 200, 1e-3, 1e-3, 0.1),
    phase(1024, 200, 1e-3, 1e-3, 0.1),
    phase(2048, 250, 1e-3, 5e-4, 0.1),
    phase(4096, 300, 5e-4, 5e-5, 0.1, hold=0.6),
    # The model above retrieves with the full cache, but with 5% caches the
    # project's first question wording failed: its key sat outside the 16
    # recent tokens, was evicted, and the answer could not copy it.  This
    # phase teaches the wording that ends with the key (kvp_data.OURS),
    # keeping the two others in the mix.
    phase(4096, 300, 3e-4, 3e-5, 0.1, hold=0.3, phrasings=("ours", "ours", "ruler", "ours_v1")),
    # Eviction by window scores (SnapKV, the kvc* methods, ...) keeps what
    # the last prompt tokens attend to.  Large models' questions attend to
    # the whole needle sentence; this 4-layer model's did only to the key and
    # the first digits (a single induction head reads the rest while
    # answering), so 5% caches lost the later digits.  This phase adds the
    # observation-window loss.
    phase(4096, 300, 3e-4, 3e-5, 0.1, hold=0.3, phrasings=("ours", "ours", "ruler", "ours_v1"),
          win_w=0.2),
]
# Observation-window loss: in every layer and KV stream, each token of the
# queried needle sentences (key, " is", the digits, ".") should get at least
# WINDOW_TAU of the attention of the last WINDOW prompt queries (hinge on the
# log share).  WINDOW is the 16 recent tokens the cache experiments keep.
WINDOW, WINDOW_TAU = 16, 0.005
WARMUP = 50

# Needle prompt kinds; echo ("repeat the sentence about KEY") trains the same
# look-up with the whole needle as target.
KINDS = [("single", 0.45), ("multikey", 0.2), ("multivalue", 0.1), ("multiquery", 0.15),
         ("echo", 0.1)]


def pick(rng, table):
    r, acc = rng.random(), 0.0
    for k, p in table:
        acc += p
        if r < acc:
            return k
    return table[-1][0]


def lr_at(ph, i):
    t = max(0.0, (i / ph["steps"] - ph["hold"]) / (1 - ph["hold"]))
    return ph["lr0"] + (ph["lr1"] - ph["lr0"]) * t


def make_batch(rng, L, n, p_lm, needle, lm, phrasings, kinds=KINDS, digit_ids=None):
    """ids, LM and answer loss weights, and per sample None or (prompt
    length, needle positions) for the observation-window loss (when
    digit_ids is given)."""
    ids = torch.full((n, L), kvp_data.EOS, dtype=torch.long)
    w_lm = torch.zeros(n, L - 1)
    w_ans = torch.zeros(n, L - 1)
    probes = [None] * n
    for b in range(n):
        if rng.random() < p_lm:
            s = lm.sample(rng, L)
            ids[b] = torch.tensor(s)
            w_lm[b] = 1
            continue
        while True:
            wrap = pick(rng, [("legacy", 0.45), ("plain", 0.4), ("raw", 0.15)])
            try:
                s, a, vals = needle.sample(
                    rng, L, kind=pick(rng, kinds), noise=rng.random() < 0.2, wrap=wrap,
                    choices=phrasings,
                    system=rng.choice(kvp_data.SYSTEM_PROMPTS) if rng.random() < 0.15 else None,
                    keep_space=rng.random() < 0.15)
                break
            except kvp_data.TooLong:
                continue  # several needles may not fit the shortest lengths
        ids[b, :len(s)] = torch.tensor(s)
        # Target t predicts ids[t + 1].
        w_lm[b, :a - 1] = 1
        w_ans[b, a - 1:len(s) - 1] = 1
        if digit_ids is not None:
            span = kvp_data.needle_span(s, a, vals, digit_ids)
            if span:
                probes[b] = (a, torch.tensor(span))
    return ids, w_lm, w_ans, probes


def evaluate(model, tok, needle, L, n, phrasing, wrap="legacy", seed=0):
    """Greedy single-needle accuracy at depths spread over 0-100%."""
    rng = random.Random(seed * 1000 + L)
    hits = 0
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for j in range(n):
            d = 100.0 * j / max(1, n - 1)
            s, a, vals = needle.sample(rng, L, kind="single", phrasing=phrasing, wrap=wrap,
                                       depths=[d])
            out = model.generate(s[:a], 48)  # the RULER answer is 36 tokens + EOS
            hits += str(vals[0]) in tok.sp.decode(out)
    model.train()
    return hits / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--essays", required=True, help="folder of the Paul Graham essays (.txt), the NIAH haystack")
    ap.add_argument("--ruler", required=True, help="RULER niah_single_2 task facts as JSON (template, needle, answer_prefix)")
    ap.add_argument("--out", default="models/kvp-mini")
    ap.add_argument("--work", default="build/kvp-mini-train", help="checkpoints and log")
    ap.add_argument("--seed", type=int, default=1234)
    # One thread: on the shared 2-core machine two OpenMP threads stall on each
    # other under load (2-5x slower per step than one thread).
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--eval-n", type=int, default=12, help="samples per length during training")
    ap.add_argument("--final-eval-n", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=250, help="steps, in phases >= 2048")
    ap.add_argument("--resume", action="store_true", help="continue from WORK/state.pt")
    a = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    logf = open(os.path.join(a.work, "train.jsonl"), "a")

    def log(**kv):
        kv["t"] = round(time.time() - t_start, 1)
        print(json.dumps(kv), flush=True)
        logf.write(json.dumps(kv) + "\n")
        logf.flush()

    # Tokenizer: trained on the training essays only.
    tok_model = train_tokenizer.train_spm(a.essays, a.out)
    train_tokenizer.write_hf_tokenizer_files(tok_model, a.out, PHASES[-1]["L"])
    tok = kvp_data.Tok(spm.SentencePieceProcessor(model_file=tok_model))

    train_files, held_files = kvp_data.split_essays(a.essays)
    log(event="data", train_essays=len(train_files),
        held_out=[os.path.basename(p) for p in held_files])
    phrasings = {"ours": kvp_data.OURS, "ours_v1": kvp_data.OURS_V1,
                 "ruler": kvp_data.ruler_phrasing(a.ruler)}
    hay = kvp_data.Haystack(train_files, tok)
    # Keys: the training word lists plus plain lowercase essay words, so keys
    # cannot be recalled from a small memorised list and must be copied from
    # the prompt; never a word of the held-out key lists (words.EVAL_* and
    # those of `kvprune needle gen`).
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    banned = set(words.EVAL_ADJECTIVES) | set(words.EVAL_NOUNS) | words.c_generator_words(repo)
    pool = sorted({w for w in hay.words if w.isalpha() and w.islower()
                   and 3 <= len(w) <= 10 and w not in banned})
    needle = kvp_data.NeedleGen(tok, hay, phrasings, words.TRAIN_ADJECTIVES + pool,
                                words.TRAIN_NOUNS + pool)
    needle_eval = kvp_data.NeedleGen(tok, kvp_data.Haystack(held_files, tok), phrasings,
                                     words.EVAL_ADJECTIVES, words.EVAL_NOUNS)
    lm = kvp_data.LMGen(train_files, tok)
    digit_list = [tok.sp.piece_to_id(str(d)) for d in range(10)]
    digit_ids = torch.tensor(digit_list)

    cfg = kvp_model.Config(vocab_size=tok.sp.get_piece_size(), dim=a.dim, n_layers=a.layers,
                           n_heads=a.heads, n_kv_heads=a.kv_heads, hidden=a.hidden,
                           rope_theta=a.rope_theta, max_pos=PHASES[-1]["L"])
    model = kvp_model.Model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(event="model", params=n_params, config=cfg.to_hf())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=PHASES[0]["lr0"], betas=(0.9, 0.95), eps=1e-8)

    step, tokens, best = 0, 0, None
    ema = None
    start = (0, 0)
    state_path = os.path.join(a.work, "state.pt")
    if a.resume:
        # Exact continuation: model, optimizer, data stream and counters.  A run
        # resumed after its phase table was changed only in phases (or the
        # undecayed part of the last phase) not yet reached equals a fresh run
        # with the changed table.
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.setstate(st["rng"])
        step, tokens, best, ema, start = st["step"], st["tokens"], st["best"], st["ema"], st["pos"]
        t_start -= st["elapsed"]
        log(event="resume", step=step)
    for pi, ph in enumerate(PHASES):
        L, steps, p_lm = ph["L"], ph["steps"], ph["p_lm"]
        bsz = ph["tokens"] // L
        for i in range(steps):
            if (pi, i) < start:
                continue
            if step % 25 == 0 and (pi, i) != start:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                            "rng": rng.getstate(), "step": step, "tokens": tokens,
                            "best": best, "ema": ema, "pos": (pi, i),
                            "elapsed": time.time() - t_start}, state_path + ".tmp")
                os.replace(state_path + ".tmp", state_path)
            lr = lr_at(ph, i)
            if step < WARMUP:
                lr *= (step + 1) / WARMUP
            for g in opt.param_groups:
                g["lr"] = lr
            t0 = time.time()
            ids, w_lm, w_ans, probes = make_batch(
                rng, L, bsz, p_lm, needle, lm, ph["phrasings"],
                digit_ids=digit_list if ph["win_w"] > 0 else None)
            probe = None
            if ph["win_w"] > 0 and any(p is not None for p in probes):
                probe = {"samples": probes, "window": WINDOW, "tau": WINDOW_TAU, "losses": []}
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(ids[:, :-1], probe=probe)
            nll = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size),
                                  ids[:, 1:].reshape(-1), reduction="none").view(bsz, L - 1)
            lm_loss = (nll * w_lm).sum() / w_lm.sum().clamp(min=1)
            ans_loss = (nll * w_ans).sum() / w_ans.sum().clamp(min=1)
            loss = lm_loss + ph["ans_w"] * ans_loss
            win_loss = 0.0
            if probe is not None and probe["losses"]:
                wl = torch.stack(probe["losses"]).mean()
                loss = loss + ph["win_w"] * wl
                win_loss = float(wl)
            # Digits of answers: at chance (ln 10 = 2.30) until retrieval works.
            w_dig = w_ans * torch.isin(ids[:, 1:], digit_ids)
            dig_loss = float((nll.detach() * w_dig).sum() / w_dig.sum().clamp(min=1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            opt.step()
            step += 1
            tokens += bsz * L
            cur = (lm_loss.item(), ans_loss.item(), dig_loss)
            ema = cur if ema is None else tuple(0.95 * e + 0.05 * c for e, c in zip(ema, cur))
            if step % 10 == 0:
                log(step=step, L=L, lr=round(lr, 7), lm=round(cur[0], 4), ans=round(cur[1], 4),
                    lm_ema=round(ema[0], 4), ans_ema=round(ema[1], 4), dig_ema=round(ema[2], 4), gnorm=round(gn, 3),
                    tokens=tokens, step_s=round(time.time() - t0, 2),
                    **({"win": round(win_loss, 4)} if ph["win_w"] > 0 else {}))
            last = i == steps - 1
            if (L >= 1024 and last) or (L >= 2048 and (i + 1) % a.eval_every == 0):
                accs = {n: evaluate(model, tok, needle_eval, n, a.eval_n, phrasings["ours"], seed=1)
                        for n in (2048, 4096) if n <= 2 * L}
                ck = {"model": model.state_dict(), "cfg": cfg.to_hf(), "step": step,
                      "tokens": tokens, "acc": accs, "lm_ema": ema[0], "ans_ema": ema[1]}
                torch.save(ck, os.path.join(a.work, "ckpt_%05d.pt" % step))
                score = sum(accs.values())
                log(event="eval", step=step, L=L, acc=accs)
                if ph is PHASES[-1] and (best is None or score >= best[0]):
                    best = (score, step)
                    torch.save(ck, os.path.join(a.work, "best.pt"))
                    export.export(model, a.out)
                    log(event="export", step=step)
    train_s = time.time() - t_start
    # The final model is the end of the decayed schedule (not the best sample),
    # so the run is a fixed recipe; the larger final evaluation picks nothing.
    export.export(model, a.out)
    final = export.load(a.out)
    res = {}
    for name in ("ours", "ours_v1", "ruler"):
        for n in (2048, 4096):
            res["%s_%d" % (name, n)] = evaluate(final, tok, needle_eval, n, a.final_eval_n,
                                                phrasings[name], seed=2)
    res["ours_4096_plain_wrap"] = evaluate(final, tok, needle_eval, 4096, a.final_eval_n // 2,
                                           phrasings["ours"], wrap="plain", seed=3)
    summary = {"event": "final", "steps": step, "tokens": tokens, "train_s": round(train_s),
               "total_s": round(time.time() - t_start), "lm_ema": ema[0], "ans_ema": ema[1],
               "params": n_params, "final_eval_n": a.final_eval_n, "acc": res, "seed": a.seed}
    log(**summary)
    with open(os.path.join(a.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
