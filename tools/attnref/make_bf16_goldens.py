"""Golden outputs of the bf16 prefill attention (compute type bf16) from an
independent numpy float64 reference, written from the numerics stated in
docs/engine.md ("Attention in bf16"), sharing no code with the C sources.

Inputs come from a xorshift64 stream that tests/cache/test_attention_bf16.c
reproduces, so only the reference outputs are stored:
tests/data/attn/bf16_goldens.bin.

Reference per case (n_q query rows, H query heads sharing one K/V stream
(GQA), row i of the block seeing keys 0..kv_base+i (causal, kv_base cached
tokens: a later chunk of a chunked prefill)):
  K, V stored in the cache's type (f32 / f16 round to nearest even / bf16),
  then q and the stored K, V rounded to bf16 (nearest even);
  z_ij = scale * q_i . k_j, m_i, l_i, a_ij = exp(z_ij - m_i) / l_i, o_i = sum a_ij v_j
  in float64; B_iu = sum_j a_ij |v_ju| (the bound of the PV weights' bf16
  rounding: |o_c - o| <= 2^-8 B + float32 noise);
  column reductions over rows >= row_begin, columns [col_begin, col_end),
  summed over the H heads as the cache does:
    col_attn[j] += a_ij^p;
    col_key[j]  += (a z)^2 (V2_j + |o_i|^2 - 2 v_j.o_i) [+ 2 a^2 z (V2_j - v_j.o_i)]
  with V2_j = |v_j|^2 of the stored (unrounded-to-bf16) values and o_i the
  reference output (the test hands the kernel this o, rounded to float32).

Run from the repository root: /usr/bin/python3 tools/attnref/make_bf16_goldens.py
"""
import struct
import sys

import numpy as np

MASK = (1 << 64) - 1

# n_q, kv_base, d, H, kv_type (0 f32, 1 f16, 2 bf16), row_begin, col_begin, col_end, p, key, cross
CASES = [
    (70, 0, 64, 2, 1, 0, 0, 70, 1, 0, 0),      # a whole prompt, GQA 2, f16 K/V, every row scores (h2o)
    (40, 37, 80, 3, 2, 24, 5, 77, 2, 1, 1),    # a chunk after 37 cached tokens, d not a multiple of 16
    (48, 200, 128, 2, 0, 16, 0, 248, 1, 1, 0), # a chunk after 200, a 32-row window (snapkv-like)
    (9, 130, 256, 1, 1, 0, 100, 139, 2, 1, 0), # the largest head size, a cut column range
    (20, 0, 24, 4, 1, 10, 3, 20, 1, 0, 0),     # a small head size, GQA 4
    (33, 63, 64, 1, 2, 1, 60, 96, 1, 1, 1),    # odd counts: keys pair across 64-key chunk ends
]


class Rng:
    def __init__(self, seed):
        self.s = seed

    def frand(self):
        s = self.s
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
        self.s = s
        f = np.float32((s >> 11) * (1.0 / 9007199254740992.0))
        return np.float32(f * np.float32(2.0) - np.float32(1.0))


def bf16(x):
    """float32 -> bf16 (round to nearest even) -> float64."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def stored(x, t):
    x = np.asarray(x, dtype=np.float32)
    if t == 1:
        return x.astype(np.float16).astype(np.float32)
    if t == 2:
        return bf16(x).astype(np.float32)
    return x


def case_out(rng, c):
    n_q, kv_base, d, H, t, row_begin, c0, c1, p, key, cross = c
    n_kv = kv_base + n_q
    q = np.array([np.float32(1.5) * rng.frand() for _ in range(n_q * H * d)], dtype=np.float32)
    kv = np.array([rng.frand() for _ in range(2 * n_kv * d)], dtype=np.float32).reshape(n_kv, 2, d)
    q = q.reshape(n_q, H, d)
    k, v = stored(kv[:, 0, :], t), stored(kv[:, 1, :], t)
    scale = float(np.float32(1.0) / np.sqrt(np.float32(d)))
    qb, kb, vb = bf16(q), bf16(k), bf16(v)
    o = np.zeros((n_q, H, d))
    B = np.zeros((n_q, H, d))
    m = np.zeros((H, n_q))
    l = np.zeros((H, n_q))
    ca = np.zeros(n_kv)
    ck = np.zeros(n_kv)
    v64 = v.astype(np.float64)
    V2 = (v64 * v64).sum(axis=1).astype(np.float32).astype(np.float64)
    for h in range(H):
        for i in range(n_q):
            see = kv_base + i + 1
            z = scale * (kb[:see] @ qb[i, h])
            m[h, i] = z.max()
            e = np.exp(z - m[h, i])
            l[h, i] = e.sum()
            a = e / l[h, i]
            o[i, h] = a @ vb[:see]
            B[i, h] = a @ np.abs(vb[:see])
            if i < row_begin:
                continue
            oi = o[i, h].astype(np.float32).astype(np.float64)  # what the kernel receives
            osq = float(np.float32((oi * oi).sum()))
            for j in range(c0, min(c1, see)):
                ca[j] += a[j] ** p
                if key:
                    vo = float(v64[j] @ oi)
                    s = (a[j] * z[j]) ** 2 * (V2[j] + osq - 2 * vo)
                    if cross:
                        s += 2 * a[j] * a[j] * z[j] * (V2[j] - vo)
                    ck[j] += s
    return o, B, m, l, ca, ck


def main():
    rng = Rng(0x5EED0B16)
    out = [b"KVAB", struct.pack("<i", len(CASES))]
    for c in CASES:
        o, B, m, l, ca, ck = case_out(rng, c)
        out.append(struct.pack("<11i", *c))
        out += [o.astype("<f4").tobytes(), B.astype("<f4").tobytes(), m.astype("<f8").tobytes(),
                l.astype("<f8").tobytes(), ca.astype("<f8").tobytes(), ck.astype("<f8").tobytes()]
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/attn/bf16_goldens.bin"
    with open(path, "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
