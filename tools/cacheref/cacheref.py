"""Independent float64 reference of the pruning KV cache (the semantics of docs/cache.md).

Written from the spec, not from the C sources: it materialises the whole
attention matrix of each block (fine for the small fixtures it runs on) and
applies the spec's scoring, budget and eviction rules literally.

Used by make_cache_goldens.py (the cache driven with random q/k/v) and by
llama_ref.py (a whole Llama-family forward with the cache).
"""
import math

import numpy as np

KVC_BASES = {
    # name: (value score, key score, cross, p, value norms)
    "V": (True, False, False, 2, True),
    "V_p1": (True, False, False, 1, True),
    "K": (False, True, False, 2, False),
    "VK": (True, True, True, 2, True),
    "VK_no_cross": (True, True, False, 2, True),
}


def method_names():
    names = ["full", "sink", "h2o", "h2o_fullhist", "tova", "snapkv",
             "snapkv_avgpool"]
    for b in ["V", "V_p1", "K", "VK", "VK_no_cross"]:
        for suf in ["", "+tova", "+maxpool", "+avgpool", "_fullhist"]:
            names.append("kvc" + b + suf)
    return names


def parse_method(name):
    """The spec's method table as a dict."""
    if name.startswith("obc"):
        name = "kvc" + name[3:]
    m = dict(kind="scored", attn=False, key=False, cross=False, p=1,
             vnorm=False, window="recent", pool=None, recent_only=False,
             move_recent=False)
    if name == "full":
        m["kind"] = "full"
    elif name == "sink":
        m["kind"] = "sink"
    elif name in ("h2o", "h2o_fullhist", "tova", "snapkv", "snapkv_avgpool"):
        m["attn"] = True
        if name == "h2o_fullhist":
            m["window"] = "all"
        if name == "tova":
            m.update(window="one", recent_only=True, move_recent=True)
        if name == "snapkv":
            m["pool"] = "max"
        if name == "snapkv_avgpool":
            m["pool"] = "avg"
    elif name.startswith("kvc"):
        rest = name[3:]
        suffix = None
        for s in ("+tova", "+maxpool", "+avgpool", "_fullhist"):
            if rest.endswith(s):
                suffix = s
                rest = rest[: -len(s)]
                break
        if rest not in KVC_BASES:
            raise ValueError("unknown method " + name)
        a, k, c, p, vn = KVC_BASES[rest]
        m.update(attn=a, key=k, cross=c, p=p, vnorm=vn)
        if suffix == "+tova":
            m.update(window="one", recent_only=True, move_recent=True)
        elif suffix == "+maxpool":
            m["pool"] = "max"
        elif suffix == "+avgpool":
            m["pool"] = "avg"
        elif suffix == "_fullhist":
            m["window"] = "all"
    else:
        raise ValueError("unknown method " + name)
    return m


def resolve_budget(m, cfg, n):
    """-> (n_recent, n_heavy, window rows or 0 for all, num_sink)."""
    if m["kind"] == "full":
        return None
    kind = cfg["budget"]
    if kind == "abs":
        r, h = cfg["num_recent"], cfg["num_heavy"]
    elif kind == "ratio":
        rr, hr = cfg["recent_ratio"], cfg["heavy_ratio"]
        if m["move_recent"]:
            rr, hr = 0.0, hr + rr
        r, h = int(n * rr), int(n * hr)
    elif kind == "cache_ratio":
        r = cfg["num_recent"]
        h = int(n * cfg["cache_ratio"]) - r
        assert h > 0
    else:
        raise ValueError(kind)
    if m["move_recent"]:
        r, h = 0, h + r
    window = {"recent": r, "all": 0, "one": 1}[m["window"]]
    if m["kind"] == "sink":
        sink = h
    else:
        sink = cfg.get("num_sink", 4) if cfg.get("streaming") else 0
    return r, h, window, sink


def pool_scores(s, pool):
    n = len(s)
    if pool is None:
        return s.copy()
    if pool == "max":
        padded = np.concatenate([np.full(3, -np.inf), s, np.full(3, -np.inf)])
        return np.array([padded[j:j + 7].max() for j in range(n)])
    padded = np.concatenate([np.zeros(3), s, np.zeros(3)])
    return np.array([padded[j:j + 7].sum() / 7.0 for j in range(n)])


def choose(scores, L, r, h, sink, coming, pool):
    """Kept indices (cache order) and the relative score margin at the
    selection boundary (inf when the choice involves no comparison)."""
    if L + coming <= r + h:
        return list(range(L)), math.inf
    recent = max(r - coming, 0)
    recent = min(recent, L)
    heavy = max(h - max(coming - r, 0), 0)
    n_cand = L - recent
    heavy = min(heavy, n_cand)
    n_sink = min(sink, heavy)
    chosen = list(range(n_sink))
    want = heavy - n_sink
    margin = math.inf
    if want > 0:
        if scores is None:
            pooled = np.zeros(n_cand)
        else:
            pooled = pool_scores(np.asarray(scores[:n_cand], dtype=np.float64),
                                 pool)
        rest = list(range(n_sink, n_cand))
        # ties: higher score first, then lower index
        order = sorted(rest, key=lambda j: (-pooled[j], j))
        chosen += order[:want]
        if want < len(order) and scores is not None:
            # relative to the values themselves: float32 rounding of sums of
            # exp() terms is relative to each sum, not to the largest score
            vals = pooled[n_sink:n_cand]
            vk, ve = pooled[order[want - 1]], pooled[order[want]]

            def rel(a, b):
                return abs(a - b) / max(abs(a), abs(b), 1e-300)
            if vk != ve:
                margin = rel(vk, ve)
            else:
                # an exact tie straddles the boundary (max pooling spreads
                # one value): the index rule decides, and it is only at risk
                # from distinct values close to the tied one
                others = vals[vals != vk]
                margin = min((rel(x, vk) for x in others), default=math.inf)
    keep = sorted(chosen) + list(range(n_cand, L))
    return keep, margin


def pyramid_split(b, n_layer, beta):
    """PyramidKV's layer budgets (docs/cache.md, "Budget allocation"): an
    arithmetic sequence from 2b - floor(b / beta) at the bottom layer down
    to floor(b / beta) at the top, each term rounded down, the remainder
    one token each to the bottom layers, so the total is n_layer * b."""
    if n_layer == 1:
        return [b]
    lo = math.floor(b / beta)
    hi = 2 * b - lo
    out = [lo + ((hi - lo) * (n_layer - 1 - l)) // (n_layer - 1)
           for l in range(n_layer)]
    rem = n_layer * b - sum(out)
    assert 0 <= rem < n_layer
    for l in range(rem):
        out[l] += 1
    return out


def rel_gap(a, b):
    """a, b: (value, scale). The gap relative to the values, or to their
    scales (the summed magnitudes of the terms they are made of) where
    those are larger: a key score that is the small difference of large
    terms is only known to float32 within the terms' size."""
    den = max(abs(a[0]), abs(b[0]), a[1], b[1], 1e-300)
    return abs(a[0] - b[0]) / den


def boundary_margin(ranked, n_keep):
    """The smallest rel_gap between a kept and a dropped (value, scale) of
    a descending ranking of which the first n_keep are kept: every pair
    across the boundary, as a value known only within its scale can pass
    more than its neighbour. Exactly equal values are skipped (the
    position rule orders them the same way in float32); inf when nothing
    is dropped or kept."""
    if n_keep <= 0 or n_keep >= len(ranked):
        return math.inf
    v = np.array([x[0] for x in ranked])
    sc = np.array([x[1] for x in ranked])
    vk, ve = v[:n_keep, None], v[None, n_keep:]
    den = np.maximum.reduce([np.abs(vk) + 0 * ve, np.abs(ve) + 0 * vk,
                             sc[:n_keep, None] + 0 * ve,
                             sc[None, n_keep:] + 0 * vk])
    den = np.maximum(den, 1e-300)
    gap = np.abs(vk - ve) / den
    gap = np.where(vk == ve, np.inf, gap)
    return float(gap.min())


def choose_adaptive(streams, r, h, sink, coming, pool, alpha):
    """Ada-KV's choice for one layer. streams: per stream (scores or None,
    positions, score scales for the margin). Returns per stream the kept indices (cache order) and the
    smallest relative score margin of the choice.

    Per stream the recent part (r - coming, clamped) is kept and the rest
    are candidates; the layer's heavy budget is B = streams * heavy with
    heavy = h - max(coming - r, 0). If all candidates fit in B nothing is
    evicted. Otherwise each stream first keeps its floor(alpha * heavy)
    best candidates, then the rest of B goes to the best remaining
    candidates of all streams. Ranking: higher (pooled) score, then older
    position, then lower stream index; NaN ranks as -inf, the first `sink`
    candidates of a stream as +inf."""
    S = len(streams)
    heavy = max(h - max(coming - r, 0), 0)
    B = S * heavy
    cands, recents = [], []
    scales = []
    for scores, pos, scale in streams:
        L = len(pos)
        recent = min(max(r - coming, 0), L)
        n_cand = L - recent
        if scores is None:
            pooled = np.zeros(n_cand)
            pscale = np.zeros(n_cand)
        else:
            pooled = pool_scores(np.asarray(scores[:n_cand], dtype=np.float64),
                                 pool)
            pscale = pool_scores(np.asarray(scale[:n_cand], dtype=np.float64),
                                 pool)
        vals = [(-math.inf if math.isnan(x) else float(x)) for x in pooled]
        for j in range(min(sink, n_cand)):
            vals[j] = math.inf
        cands.append(vals)
        scales.append([float(x) for x in pscale])
        recents.append(recent)
    total = sum(len(v) for v in cands)
    if total <= B:
        return [list(range(len(p))) for _, p, _ in streams], math.inf
    floor_k = math.floor(alpha * heavy)
    key = lambda t: (-t[0], t[1], t[2])  # (score, position, stream)
    chosen = [set() for _ in range(S)]
    rest = []
    margin = math.inf
    for si, vals in enumerate(cands):
        pos = streams[si][1]
        order = sorted(((vals[j], pos[j], si, j, scales[si][j])
                        for j in range(len(vals))), key=key)
        for t in order[:floor_k]:
            chosen[si].add(t[3])
        rest += order[floor_k:]
        margin = min(margin, boundary_margin(
            [(t[0], t[4]) for t in order if math.isfinite(t[0])],
            sum(1 for t in order[:floor_k] if math.isfinite(t[0]))))
    left = B - sum(len(c) for c in chosen)
    rest.sort(key=key)
    for t in rest[:left]:
        chosen[t[2]].add(t[3])
    finite = [(t[0], t[4]) for t in rest if math.isfinite(t[0])]
    margin = min(margin, boundary_margin(
        finite, sum(1 for t in rest[:left] if math.isfinite(t[0]))))
    keeps = []
    for si, vals in enumerate(cands):
        L = len(streams[si][1])
        keeps.append(sorted(chosen[si]) + list(range(len(vals), L)))
    return keeps, margin


def round_kv(x, kv_type):
    """K or V rows as the cache stores them (kv_type "f32", "f16", "bf16").

    The cache receives float32 rows and rounds them to nearest even; "f32"
    leaves the reference's float64 values as they are."""
    if kv_type == "f32":
        return x
    x32 = np.asarray(x, dtype=np.float32)
    if kv_type == "f16":
        return x32.astype(np.float16).astype(np.float64)
    if kv_type == "bf16":
        b = x32.view(np.uint32).astype(np.uint64)
        b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        return b.astype(np.uint32).view(np.float32).astype(np.float64)
    raise ValueError("unknown kv_type " + kv_type)


class Stream:
    def __init__(self, d):
        self.k = np.zeros((0, d))
        self.v = np.zeros((0, d))
        self.pos = np.zeros(0, dtype=np.int64)
        self.sattn = np.zeros(0)
        self.skey = np.zeros(0)
        self.vnorm = np.zeros(0)
        self.kscale = np.zeros(0)  # summed |terms| of skey (margins only)

    def keep(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        for f in ("k", "v", "pos", "sattn", "skey", "vnorm", "kscale"):
            setattr(self, f, getattr(self, f)[idx])


class Cache:
    """cfg: method, budget ('abs'|'ratio'|'cache_ratio') + its numbers,
    decode_evict, streaming, gqa ('q'|'kv'), kv_type ('f32' when absent,
    'f16', 'bf16': K and V are rounded when stored, as the cache does),
    budget_alloc ('uniform' when absent, 'adaptive') with safeguard
    (default 0.2), layer_alloc ('uniform' when absent, 'pyramid') with
    pyramid_beta (default 20)."""

    def __init__(self, cfg, n_layer, n_head, n_head_kv, d):
        self.cfg = cfg
        self.m = parse_method(cfg["method"])
        self.n_layer, self.n_head, self.n_head_kv, self.d = (
            n_layer, n_head, n_head_kv, d)
        self.group = n_head // n_head_kv
        self.n_streams = n_head_kv if cfg["gqa"] == "kv" else n_head
        self.reset()

    def reset(self):
        self.layers = [[Stream(self.d) for _ in range(self.n_streams)]
                       for _ in range(self.n_layer)]
        self.n_seen = 0
        self.budget = None
        self.layer_heavy = None
        self.min_margin = math.inf

    def selection_scales(self, st):
        """Summed magnitudes of each selection score's terms (the value
        score is a sum of positive terms; the key score may cancel)."""
        return np.abs(self.selection_scores(st) -
                      (st.skey if self.m["key"] else 0.0)) + st.kscale

    def selection_scores(self, st):
        m = self.m
        s = np.zeros(len(st.pos))
        if m["attn"]:
            s = st.sattn * st.vnorm if m["vnorm"] else st.sattn.copy()
        if m["key"]:
            s = s + st.skey
        return s

    def layer_budget(self, layer):
        """(n_recent, heavy, num_sink) of one layer."""
        r, _, _, sink = self.budget
        h = self.layer_heavy[layer]
        if self.m["kind"] == "sink":
            sink = h
        return r, h, sink

    def adaptive(self):
        return self.cfg.get("budget_alloc", "uniform") == "adaptive"

    def evict_layer(self, layer, coming):
        m = self.m
        if m["kind"] == "full":
            return
        if not self.adaptive():
            for st in self.layers[layer]:
                self.evict(st, coming, layer)
            return
        r, h, sink = self.layer_budget(layer)
        sts = self.layers[layer]
        streams = [(self.selection_scores(st) if m["kind"] == "scored"
                    else None, st.pos.tolist(), self.selection_scales(st))
                   for st in sts]
        keeps, margin = choose_adaptive(streams, r, h, sink, coming, m["pool"],
                                        self.cfg.get("safeguard", 0.2))
        self.min_margin = min(self.min_margin, margin)
        for st, keep in zip(sts, keeps):
            st.keep(keep)

    def evict(self, st, coming, layer):
        m = self.m
        if m["kind"] == "full":
            return
        r, h, sink = self.layer_budget(layer)
        scores = self.selection_scores(st) if m["kind"] == "scored" else None
        keep, margin = choose(scores, len(st.pos), r, h, sink, coming,
                              m["pool"])
        self.min_margin = min(self.min_margin, margin)
        st.keep(keep)

    def begin(self, n_new, n_prompt_total):
        first = self.n_seen == 0
        prefill = n_prompt_total > 0 or first
        n_prompt = n_prompt_total if n_prompt_total > 0 else n_new
        if first:
            self.budget = resolve_budget(self.m, self.cfg, n_prompt)
            if self.budget:
                h = self.budget[1]
                if self.cfg.get("layer_alloc", "uniform") == "pyramid" and h > 0:
                    self.layer_heavy = pyramid_split(
                        h, self.n_layer, self.cfg.get("pyramid_beta", 20.0))
                else:
                    self.layer_heavy = [h] * self.n_layer
        full = self.m["kind"] == "full"
        self.pre_coming = n_new if (prefill and not first and not full) else 0
        if prefill:
            w = self.budget[2] if self.budget else 0
            self.rows = range(n_new - w, n_new) if 0 < w < n_new else range(n_new)
            self.post = self.n_seen + n_new >= n_prompt
        else:
            self.rows = (range(n_new - 1, n_new) if self.m["window"] == "one"
                         else range(n_new))
            self.post = self.cfg["decode_evict"]
        self.post = self.post and not full
        self.n_new = n_new

    def attend(self, layer, q, k, v):
        """q [n][H][d], k/v [n][Hkv][d] -> out [n][H][d] (float64)."""
        m, n = self.m, self.n_new
        out = np.zeros((n, self.n_head, self.d))
        if self.pre_coming:
            self.evict_layer(layer, self.pre_coming)
        for s, st in enumerate(self.layers[layer]):
            kvh = s if self.cfg["gqa"] == "kv" else s // self.group
            kvt = self.cfg.get("kv_type", "f32")
            vk, vv = round_kv(k[:, kvh, :], kvt), round_kv(v[:, kvh, :], kvt)
            st.k = np.concatenate([st.k, vk])
            st.v = np.concatenate([st.v, vv])
            st.pos = np.concatenate(
                [st.pos, np.arange(self.n_seen, self.n_seen + n)])
            st.sattn = np.concatenate([st.sattn, np.zeros(n)])
            st.skey = np.concatenate([st.skey, np.zeros(n)])
            st.kscale = np.concatenate([st.kscale, np.zeros(n)])
            if m["vnorm"]:
                vn = (np.abs(vv).sum(1) if m["p"] == 1 else (vv ** 2).sum(1))
            else:
                vn = np.zeros(n)
            st.vnorm = np.concatenate([st.vnorm, vn])
            L = len(st.pos)
            old = L - n
            heads = ([s * self.group + g for g in range(self.group)]
                     if self.cfg["gqa"] == "kv" else [s])
            add_attn, add_key, add_scale = np.zeros(L), np.zeros(L), np.zeros(L)
            for hq in heads:
                Q = q[:, hq, :]
                Z = Q @ st.k.T / math.sqrt(self.d)
                mask = np.arange(L)[None, :] > (old + np.arange(n))[:, None]
                Zm = np.where(mask, -np.inf, Z)
                A = np.exp(Zm - Zm.max(1, keepdims=True))
                A /= A.sum(1, keepdims=True)
                O = A @ st.v
                out[:, hq, :] = O
                if m["kind"] != "scored":
                    continue
                R = list(self.rows)
                Aw, Zw, Ow = A[R], Z[R], O[R]
                if m["attn"]:
                    add_attn += (Aw ** m["p"]).sum(0)
                if m["key"]:
                    v2 = (st.v ** 2).sum(1)  # = Vnorm whenever both are used
                    vo = Ow @ st.v.T
                    o2 = (Ow ** 2).sum(1)
                    term = (Aw * Zw) ** 2 * (v2[None, :] + o2[:, None] - 2 * vo)
                    mag = (Aw * Zw) ** 2 * (v2[None, :] + o2[:, None] + 2 * abs(vo))
                    if m["cross"]:
                        term = term + 2 * Aw ** 2 * Zw * (v2[None, :] - vo)
                        mag = mag + 2 * Aw ** 2 * abs(Zw) * (v2[None, :] + abs(vo))
                    add_key += term.sum(0)
                    add_scale += mag.sum(0)
            if m["kind"] == "scored":
                if m["recent_only"]:
                    st.sattn, st.skey, st.kscale = add_attn, add_key, add_scale
                else:
                    st.sattn = st.sattn + add_attn
                    st.skey = st.skey + add_key
                    st.kscale = st.kscale + add_scale
        if self.post:
            self.evict_layer(layer, 0)
        return out

    def end(self):
        self.n_seen += self.n_new

    def kept(self):
        return [[st.pos.tolist() for st in layer] for layer in self.layers]
