"""ctypes declarations of include/kvprune.h (the structs mirror it field by
field) and the search for the shared library."""
import ctypes
import ctypes.util
import glob
import os

# The ABI this module was written for: the library's SONAME version.
ABI = (0, 2)


class KvpError(Exception):
    """A failure reported by the library: .status is the kvp_status code,
    .status_name its name, the message is the library's."""

    def __init__(self, status, message, status_name=""):
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class Error(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * 512)]


class ModelParams(ctypes.Structure):
    _fields_ = [("n_threads", ctypes.c_int), ("use_mmap", ctypes.c_bool),
                ("load_tokenizer", ctypes.c_bool), ("compute", ctypes.c_int),
                ("repack", ctypes.c_bool)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("n_vocab", ctypes.c_int), ("n_ctx_train", ctypes.c_int),
                ("n_embd", ctypes.c_int), ("n_layer", ctypes.c_int),
                ("n_head", ctypes.c_int), ("n_head_kv", ctypes.c_int),
                ("head_dim", ctypes.c_int), ("n_ff", ctypes.c_int),
                ("rope_theta", ctypes.c_float), ("rms_norm_eps", ctypes.c_float),
                ("bos_id", ctypes.c_int32), ("eos_ids", ctypes.POINTER(ctypes.c_int32)),
                ("n_eos", ctypes.c_int), ("n_params", ctypes.c_uint64),
                ("weight_bytes", ctypes.c_uint64), ("weight_types", ctypes.c_char_p),
                ("repack_bytes", ctypes.c_uint64), ("compute", ctypes.c_char_p),
                ("onednn", ctypes.c_bool)]


class TokenizeParams(ctypes.Structure):
    _fields_ = [("add_special", ctypes.c_bool), ("parse_special", ctypes.c_bool)]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class CacheParams(ctypes.Structure):
    _fields_ = [("method", ctypes.c_char_p), ("num_recent", ctypes.c_int),
                ("num_heavy", ctypes.c_int), ("recent_ratio", ctypes.c_double),
                ("heavy_ratio", ctypes.c_double), ("cache_ratio", ctypes.c_double),
                ("decode_evict", ctypes.c_bool), ("streaming", ctypes.c_bool),
                ("gqa_mode", ctypes.c_int), ("max_tokens", ctypes.c_int),
                ("kv_type", ctypes.c_int), ("num_sink", ctypes.c_int),
                ("budget_alloc", ctypes.c_int), ("safeguard", ctypes.c_double),
                ("layer_alloc", ctypes.c_int), ("pyramid_beta", ctypes.c_double)]


class CacheLayerStats(ctypes.Structure):
    _fields_ = [("min_kept", ctypes.c_int), ("max_kept", ctypes.c_int),
                ("mean_kept", ctypes.c_double), ("total_kept", ctypes.c_int64),
                ("num_heavy", ctypes.c_int)]


class CacheStats(ctypes.Structure):
    _fields_ = [("n_layer", ctypes.c_int), ("n_streams", ctypes.c_int),
                ("n_seen", ctypes.c_int64), ("n_kept_total", ctypes.c_int64),
                ("num_recent", ctypes.c_int), ("num_heavy", ctypes.c_int),
                ("kv_bytes", ctypes.c_size_t), ("kv_bytes_peak", ctypes.c_size_t),
                ("kv_bytes_full", ctypes.c_size_t), ("attn_ms", ctypes.c_double)]


TOKEN_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_int32,
                            ctypes.POINTER(ctypes.c_float), ctypes.c_int)


class GenParams(ctypes.Structure):
    _fields_ = [("max_new_tokens", ctypes.c_int), ("temperature", ctypes.c_float),
                ("top_k", ctypes.c_int), ("top_p", ctypes.c_float),
                ("seed", ctypes.c_uint64), ("ignore_eos", ctypes.c_bool),
                ("prefill_chunk", ctypes.c_int), ("n_threads", ctypes.c_int),
                ("keep_cache", ctypes.c_bool), ("on_token", TOKEN_CB), ("user", ctypes.c_void_p)]


class GenResult(ctypes.Structure):
    _fields_ = [("ids", ctypes.POINTER(ctypes.c_int32)), ("n_ids", ctypes.c_size_t),
                ("n_prompt", ctypes.c_size_t), ("prefill_ms", ctypes.c_double),
                ("decode_ms", ctypes.c_double), ("attn_ms", ctypes.c_double),
                ("stopped_at_eos", ctypes.c_bool), ("cache", CacheStats)]


class ScoreInput(ctypes.Structure):
    _fields_ = [("attn", ctypes.POINTER(ctypes.c_float)),
                ("logits", ctypes.POINTER(ctypes.c_float)),
                ("values", ctypes.POINTER(ctypes.c_float)),
                ("outputs", ctypes.POINTER(ctypes.c_float)),
                ("n_q", ctypes.c_int), ("n_kv", ctypes.c_int),
                ("head_dim", ctypes.c_int), ("window", ctypes.c_int)]


_P = ctypes.c_void_p
_I32P = ctypes.POINTER(ctypes.c_int32)
_ERR = ctypes.POINTER(Error)

# name: (restype, argtypes)
_SIGNATURES = {
    "kvp_version": (ctypes.c_char_p, []),
    "kvp_status_str": (ctypes.c_char_p, [ctypes.c_int]),
    "kvp_free": (None, [_P]),
    "kvp_model_default_params": (ModelParams, []),
    "kvp_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ModelParams),
                                      ctypes.POINTER(_P), _ERR]),
    "kvp_model_free": (None, [_P]),
    "kvp_model_get_info_sized": (None, [_P, ctypes.POINTER(ModelInfo), ctypes.c_size_t]),
    "kvp_model_tokenizer": (_P, [_P]),
    "kvp_tokenize_default_params": (TokenizeParams, []),
    "kvp_tokenize": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t,
                                    ctypes.POINTER(TokenizeParams), ctypes.POINTER(_I32P),
                                    ctypes.POINTER(ctypes.c_size_t), _ERR]),
    "kvp_detokenize": (ctypes.c_int, [_P, _I32P, ctypes.c_size_t, ctypes.c_bool,
                                      ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t), _ERR]),
    "kvp_chat_tokenize": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(ChatMessage),
                                         ctypes.c_size_t, ctypes.c_bool, ctypes.POINTER(_I32P),
                                         ctypes.POINTER(ctypes.c_size_t), _ERR]),
    "kvp_cache_default_params": (CacheParams, []),
    "kvp_cache_method_names": (ctypes.POINTER(ctypes.c_char_p), []),
    "kvp_cache_new": (ctypes.c_int, [_P, ctypes.POINTER(CacheParams), ctypes.POINTER(_P), _ERR]),
    "kvp_cache_reset": (None, [_P]),
    "kvp_cache_free": (None, [_P]),
    "kvp_cache_warning": (ctypes.c_char_p, [_P]),
    "kvp_cache_get_stats": (None, [_P, ctypes.POINTER(CacheStats)]),
    "kvp_cache_get_layer_stats": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(CacheLayerStats),
                                                 _ERR]),
    "kvp_cache_kept_positions": (ctypes.c_int, [_P, ctypes.c_int, ctypes.c_int,
                                                ctypes.POINTER(_I32P),
                                                ctypes.POINTER(ctypes.c_size_t), _ERR]),
    "kvp_score_tokens": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ScoreInput), ctypes.c_int,
                                        ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_float),
                                        _I32P, ctypes.POINTER(ctypes.c_int), _ERR]),
    "kvp_eval": (ctypes.c_int, [_P, _P, _I32P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_float),
                                _ERR]),
    "kvp_gen_default_params": (GenParams, []),
    "kvp_generate": (ctypes.c_int, [_P, _P, _I32P, ctypes.c_size_t, ctypes.POINTER(GenParams),
                                    ctypes.POINTER(GenResult), _ERR]),
    "kvp_gen_result_free": (None, [ctypes.POINTER(GenResult)]),
}


def _candidates():
    env = os.environ.get("KVPRUNE_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for f in sorted(glob.glob(os.path.join(here, "libkvprune.so*"))):
        yield f
    yield "libkvprune.so.%d.%d" % ABI
    found = ctypes.util.find_library("kvprune")
    if found:
        yield found


def load():
    """The shared library: $KVPRUNE_LIBRARY (a path), else a copy in this
    package's folder, else the system loader's libkvprune."""
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
            continue
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        version = lib.kvp_version().decode()
        if tuple(int(x) for x in version.split(".")[:2]) != ABI:
            raise ImportError("kvprune: %s is version %s; this binding needs %d.%d.x"
                              % (path, version, ABI[0], ABI[1]))
        return lib
    raise ImportError("kvprune: libkvprune.so not found (set KVPRUNE_LIBRARY to its path): "
                      + "; ".join(errors))
