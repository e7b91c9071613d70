"""Python binding of kv-cache-pruner (libkvprune) over ctypes.

    import kvprune
    model = kvprune.Model("models/kvp-mini.gguf")
    out = model.generate("What is a KV cache?", max_new_tokens=32,
                         method="kvcVK", num_recent=16, cache_ratio=0.05)
    print(out.text, out.ids, out.stats)

Method names and budget arguments are those of the cache
(kvprune.method_names()): num_recent + num_heavy, recent_ratio +
heavy_ratio, or num_recent + cache_ratio; decode_evict as in load_kv_cache.
Failures raise KvpError with the library's message.
"""
import ctypes
from dataclasses import dataclass, field
from typing import List, Optional

from ._lib import (ABI, CacheLayerStats, CacheParams, CacheStats, ChatMessage, Error, GenParams, GenResult,
                   KvpError, ModelInfo, ScoreInput, TOKEN_CB, load)

__all__ = ["Model", "Cache", "GenerateResult", "KvpError", "score_tokens", "score_attention",
           "load_kv_cache", "method_names", "version"]

_lib = load()

_GQA = {"per_query_head": 0, "per_kv_head": 1}
_KV_TYPES = {"f32": 0, "f16": 1, "bf16": 2}
_BUDGET_ALLOC = {"uniform": 0, "adaptive": 1}
_LAYER_ALLOC = {"uniform": 0, "pyramid": 1}


def _check(status, err):
    if status != 0:
        raise KvpError(status, err.message.decode("utf-8", "replace"),
                       _lib.kvp_status_str(status).decode())


def _take_ids(ptr, n):
    try:
        return [ptr[i] for i in range(n)]
    finally:
        _lib.kvp_free(ctypes.cast(ptr, ctypes.c_void_p))


def version():
    """The version of the loaded library, e.g. "0.2.0"."""
    return _lib.kvp_version().decode()


def method_names():
    """Every valid cache method name."""
    names, arr, i = [], _lib.kvp_cache_method_names(), 0
    while arr[i] is not None:
        names.append(arr[i].decode())
        i += 1
    return names


def _int_ids(ids):
    ids = [int(i) for i in ids]
    return (ctypes.c_int32 * max(len(ids), 1))(*ids), len(ids)


@dataclass
class GenerateResult:
    ids: List[int]            # generated ids (EOS included when it stopped there)
    text: Optional[str]       # their text (None for a model without tokenizer)
    prompt_ids: List[int]
    stopped_at_eos: bool
    stats: dict = field(default_factory=dict)


def _stats_dict(s):
    return {f: getattr(s, f) for f, _ in CacheStats._fields_}


class Model:
    """A model loaded from a GGUF file or a Hugging Face folder."""

    def __init__(self, path, n_threads=0, use_mmap=True, load_tokenizer=True, compute="auto",
                 repack=False):
        params = _lib.kvp_model_default_params()
        params.n_threads = int(n_threads)
        params.use_mmap = bool(use_mmap)
        params.load_tokenizer = bool(load_tokenizer)
        computes = {"auto": 0, "f32": 1, "bf16": 2}
        if compute not in computes:
            raise ValueError(f"compute {compute!r} is not auto, f32 or bf16")
        params.compute = computes[compute]
        params.repack = bool(repack)
        self._h = ctypes.c_void_p()
        err = Error()
        _check(_lib.kvp_model_load(str(path).encode(), ctypes.byref(params),
                                   ctypes.byref(self._h), ctypes.byref(err)), err)
        self._tok = _lib.kvp_model_tokenizer(self._h)

    def close(self):
        if getattr(self, "_h", None):
            _lib.kvp_model_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def info(self):
        """Dimensions and metadata of the model (a dict)."""
        mi = ModelInfo()
        _lib.kvp_model_get_info_sized(self._h, ctypes.byref(mi), ctypes.sizeof(mi))
        d = {f: getattr(mi, f) for f, _ in ModelInfo._fields_}
        for k in ("arch", "name", "weight_types", "compute"):
            d[k] = d[k].decode()
        d["eos_ids"] = [mi.eos_ids[i] for i in range(mi.n_eos)]
        return d

    def _need_tokenizer(self):
        if not self._tok:
            raise KvpError(4, "the model has no tokenizer: pass token ids", "invalid argument")

    def tokenize(self, text, add_special=True, parse_special=True):
        """Token ids of `text` (no chat template)."""
        self._need_tokenizer()
        data = text.encode()
        tp = _lib.kvp_tokenize_default_params()
        tp.add_special, tp.parse_special = bool(add_special), bool(parse_special)
        ids, n, err = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t(), Error()
        _check(_lib.kvp_tokenize(self._tok, data, len(data), ctypes.byref(tp), ctypes.byref(ids),
                                 ctypes.byref(n), ctypes.byref(err)), err)
        return _take_ids(ids, n.value)

    def chat_tokenize(self, user, system=None, template=None):
        """Ids of a user message (and optional system message) in the model's
        chat template, with the generation prompt."""
        self._need_tokenizer()
        msgs = ([("system", system)] if system is not None else []) + [("user", user)]
        arr = (ChatMessage * len(msgs))(*[ChatMessage(r.encode(), c.encode()) for r, c in msgs])
        ids, n, err = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t(), Error()
        _check(_lib.kvp_chat_tokenize(self._tok, template.encode() if template else None, arr,
                                      len(msgs), True, ctypes.byref(ids), ctypes.byref(n),
                                      ctypes.byref(err)), err)
        return _take_ids(ids, n.value)

    def detokenize(self, ids, skip_special=True):
        self._need_tokenizer()
        arr, n = _int_ids(ids)
        text, tlen, err = ctypes.c_void_p(), ctypes.c_size_t(), Error()
        _check(_lib.kvp_detokenize(self._tok, arr, n, bool(skip_special), ctypes.byref(text),
                                   ctypes.byref(tlen), ctypes.byref(err)), err)
        try:
            return ctypes.string_at(text, tlen.value).decode("utf-8", "replace")
        finally:
            _lib.kvp_free(text)

    def cache(self, method="full", **budgets):
        """A reusable cache for this model (see Cache)."""
        return Cache(self, method, **budgets)

    def eval(self, ids, cache):
        """Runs `ids` through the model appended to what `cache` holds and
        returns the logits after the last one (a list of n_vocab floats)."""
        arr, n = _int_ids(ids)
        n_vocab = self.info["n_vocab"]
        logits, err = (ctypes.c_float * n_vocab)(), Error()
        _check(_lib.kvp_eval(self._h, cache._h, arr, n, logits, ctypes.byref(err)), err)
        return list(logits)

    def generate(self, prompt, max_new_tokens=64, method="full", num_recent=None, num_heavy=None,
                 recent_ratio=None, heavy_ratio=None, cache_ratio=None, decode_evict=True,
                 streaming=False, num_sink=None, gqa_mode=None, kv_type=None, max_tokens=None,
                 budget_alloc=None, safeguard=None, layer_alloc=None, pyramid_beta=None, cache=None,
                 chat=True, system=None, chat_template=None, temperature=0.0, top_k=0,
                 top_p=1.0, seed=0, ignore_eos=False, prefill_chunk=0, n_threads=0,
                 on_token=None):
        """Generates from `prompt`: a string (in the chat template unless
        chat=False) or a list of token ids. The cache is `cache` when given
        (it is reset first), else one made from method and the budgets.
        on_token(id) -> False stops. Returns a GenerateResult."""
        if isinstance(prompt, str):
            ids = (self.chat_tokenize(prompt, system, chat_template) if chat
                   else self.tokenize(prompt))
        else:
            ids = [int(i) for i in prompt]
        own = cache is None
        if own:
            cache = Cache(self, method, num_recent=num_recent, num_heavy=num_heavy,
                          recent_ratio=recent_ratio, heavy_ratio=heavy_ratio,
                          cache_ratio=cache_ratio, decode_evict=decode_evict, streaming=streaming,
                          num_sink=num_sink, gqa_mode=gqa_mode, kv_type=kv_type, max_tokens=max_tokens,
                          budget_alloc=budget_alloc, safeguard=safeguard,
                          layer_alloc=layer_alloc, pyramid_beta=pyramid_beta)
        elif cache._model is not self:
            raise ValueError("generate: the cache belongs to another model")
        gp = _lib.kvp_gen_default_params()
        gp.max_new_tokens = int(max_new_tokens)
        gp.temperature, gp.top_k, gp.top_p = float(temperature), int(top_k), float(top_p)
        gp.seed, gp.ignore_eos = int(seed), bool(ignore_eos)
        gp.prefill_chunk, gp.n_threads = int(prefill_chunk), int(n_threads)
        raised = []
        if on_token is not None:
            def cb(_user, tid, _logits, _n_vocab):
                try:
                    return on_token(tid) is not False
                except BaseException as e:  # carried out of the C call, raised below
                    raised.append(e)
                    return False
            gp.on_token = TOKEN_CB(cb)
        arr, n = _int_ids(ids)
        res, err = GenResult(), Error()
        try:
            _check(_lib.kvp_generate(self._h, cache._h, arr, n, ctypes.byref(gp),
                                     ctypes.byref(res), ctypes.byref(err)), err)
            out_ids = [res.ids[i] for i in range(res.n_ids)]
            # the cache's figures, then this generation's own (its attn_ms
            # is this call's, the cache's counts since the last reset)
            stats = _stats_dict(res.cache)
            stats.update({"prompt_tokens": res.n_prompt, "generated_tokens": res.n_ids,
                          "prefill_ms": res.prefill_ms, "decode_ms": res.decode_ms,
                          "attn_ms": res.attn_ms})
            stopped = bool(res.stopped_at_eos)
            _lib.kvp_gen_result_free(ctypes.byref(res))
        finally:
            if own:
                cache.close()
        if raised:
            raise raised[0]
        text = self.detokenize(out_ids) if self._tok else None
        return GenerateResult(out_ids, text, ids, stopped, stats)


class Cache:
    """A pruning KV cache shaped for a model; reusable across sequences
    (reset() clears it; generate() resets it itself)."""

    def __init__(self, model, method="full", num_recent=None, num_heavy=None, recent_ratio=None,
                 heavy_ratio=None, cache_ratio=None, decode_evict=True, streaming=False,
                 num_sink=None, gqa_mode=None, kv_type=None, max_tokens=None, budget_alloc=None,
                 safeguard=None, layer_alloc=None, pyramid_beta=None):
        """budget_alloc: "uniform" or "adaptive" (Ada-KV) with safeguard;
        layer_alloc: "uniform" or "pyramid" (PyramidKV) with pyramid_beta
        (docs/cache.md, "Budget allocation")."""
        cp = _lib.kvp_cache_default_params()
        self._method = str(method).encode()  # kept alive for the call
        cp.method = self._method
        for name, v in (("num_recent", num_recent), ("num_heavy", num_heavy),
                        ("max_tokens", max_tokens), ("num_sink", num_sink)):
            if v is not None:
                setattr(cp, name, int(v))
        for name, v in (("recent_ratio", recent_ratio), ("heavy_ratio", heavy_ratio),
                        ("cache_ratio", cache_ratio), ("safeguard", safeguard),
                        ("pyramid_beta", pyramid_beta)):
            if v is not None:
                setattr(cp, name, float(v))
        cp.decode_evict, cp.streaming = bool(decode_evict), bool(streaming)
        if gqa_mode is not None:
            if gqa_mode not in _GQA:
                raise ValueError("gqa_mode must be one of %s, not %r" % (sorted(_GQA), gqa_mode))
            cp.gqa_mode = _GQA[gqa_mode]
        if kv_type is not None:
            if kv_type not in _KV_TYPES:
                raise ValueError("kv_type must be one of %s, not %r" % (sorted(_KV_TYPES), kv_type))
            cp.kv_type = _KV_TYPES[kv_type]
        for name, v, table in (("budget_alloc", budget_alloc, _BUDGET_ALLOC),
                               ("layer_alloc", layer_alloc, _LAYER_ALLOC)):
            if v is not None:
                if v not in table:
                    raise ValueError("%s must be one of %s, not %r" % (name, sorted(table), v))
                setattr(cp, name, table[v])
        self._model = model
        self._h = ctypes.c_void_p()
        err = Error()
        _check(_lib.kvp_cache_new(model._h, ctypes.byref(cp), ctypes.byref(self._h),
                                  ctypes.byref(err)), err)

    def reset(self):
        _lib.kvp_cache_reset(self._h)

    def close(self):
        if getattr(self, "_h", None):
            _lib.kvp_cache_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    @property
    def stats(self):
        s = CacheStats()
        _lib.kvp_cache_get_stats(self._h, ctypes.byref(s))
        return _stats_dict(s)

    @property
    def warning(self):
        w = _lib.kvp_cache_warning(self._h)
        return w.decode() if w else None

    def kept_positions(self, layer, stream):
        pos, n, err = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t(), Error()
        _check(_lib.kvp_cache_kept_positions(self._h, int(layer), int(stream), ctypes.byref(pos),
                                             ctypes.byref(n), ctypes.byref(err)), err)
        return [pos[i] for i in range(n.value)]

    def layer_stats(self, layer):
        """{"min_kept", "max_kept", "mean_kept", "total_kept", "num_heavy"}
        of one layer's streams."""
        st, err = CacheLayerStats(), Error()
        _check(_lib.kvp_cache_get_layer_stats(self._h, int(layer), ctypes.byref(st),
                                              ctypes.byref(err)), err)
        return {f: getattr(st, f) for f, _ in CacheLayerStats._fields_}


def load_kv_cache(model, method="full", num_recent=None, num_heavy=None, recent_ratio=None,
                  heavy_ratio=None, cache_ratio=None, decode_evict=True, **kwargs):
    """A Cache for `model` with load_kv_cache's method and budget arguments."""
    return Cache(model, method, num_recent=num_recent, num_heavy=num_heavy,
                 recent_ratio=recent_ratio, heavy_ratio=heavy_ratio, cache_ratio=cache_ratio,
                 decode_evict=decode_evict, **kwargs)


def _f32(np, a, shape, name):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.shape != shape:
        raise ValueError("%s: shape %s, expected %s" % (name, a.shape, shape))
    return a


def score_attention(attn, logits, values, outputs, method, n_recent=0, n_heavy=0, num_sink=0,
                    window=0):
    """kvp_score_tokens over numpy arrays of one head: attn and logits
    [n_q, n_kv], values [n_kv, d], outputs [n_q, d]. Returns (scores
    [n_kv] float32, kept indices int32 in cache order)."""
    import numpy as np
    attn = np.ascontiguousarray(attn, dtype=np.float32)
    if attn.ndim != 2:
        raise ValueError("attn must be 2-D [n_q, n_kv], got shape %s" % (attn.shape,))
    n_q, n_kv = attn.shape
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] != n_kv:
        raise ValueError("values: shape %s, expected [%d, head_dim]" % (values.shape, n_kv))
    d = values.shape[1]
    logits = _f32(np, logits, (n_q, n_kv), "logits")
    outputs = _f32(np, outputs, (n_q, d), "outputs")
    fp = ctypes.POINTER(ctypes.c_float)
    inp = ScoreInput(attn.ctypes.data_as(fp), logits.ctypes.data_as(fp),
                     values.ctypes.data_as(fp), outputs.ctypes.data_as(fp), n_q, n_kv, d,
                     int(window))
    scores = np.zeros(n_kv, dtype=np.float32)
    kept = np.zeros(max(n_kv, 1), dtype=np.int32)
    n_kept, err = ctypes.c_int(), Error()
    _check(_lib.kvp_score_tokens(str(method).encode(), ctypes.byref(inp), int(n_recent),
                                 int(n_heavy), int(num_sink), scores.ctypes.data_as(fp),
                                 kept.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                 ctypes.byref(n_kept), ctypes.byref(err)), err)
    return scores, kept[: n_kept.value].copy()


def score_tokens(q, k, v, method, n_recent=0, n_heavy=0, num_sink=0, window=0, causal=True):
    """Scores the keys of one head from its queries q [n_q, d], keys k
    [n_kv, d] and values v [n_kv, d] (e.g. tensors of another engine, as
    numpy arrays): attention is softmax(q k^T / sqrt(d)), causal with the
    queries as the last n_q positions. Returns (scores, kept) as
    score_attention."""
    import numpy as np
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if q.ndim != 2 or k.ndim != 2 or v.ndim != 2 or q.shape[1] != k.shape[1] \
            or k.shape[0] != v.shape[0]:
        raise ValueError("score_tokens: q [n_q, d], k [n_kv, d], v [n_kv, d_v] expected; got "
                         "%s, %s, %s" % (q.shape, k.shape, v.shape))
    n_q, n_kv = q.shape[0], k.shape[0]
    if causal and n_q > n_kv:
        raise ValueError("score_tokens: causal attention needs n_q <= n_kv")
    logits = q @ k.T / np.sqrt(q.shape[1])
    z = logits.copy()
    if causal:
        pos = np.arange(n_kv - n_q, n_kv)[:, None]
        z[np.arange(n_kv)[None, :] > pos] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    attn = np.exp(z)
    attn /= attn.sum(axis=1, keepdims=True)
    outputs = attn @ v
    return score_attention(attn, logits, v, outputs, method, n_recent, n_heavy, num_sink, window)
