"""MinHash signatures of records, computed in one numpy pass over a batch of texts.

The pass gives the shingle hashes (12 bytes at every word start, lower-cased), the signatures
(bit-for-bit what datasketch's `MinHash.update_batch` gives for the same shingle hashes, tested),
digit counts, letter ratios and the longest word of each text; the recovery-phrase check
(secrets.phrase_flags) runs on the same batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from studio.core.quality.scoring import letter_ratio
from studio.core.quality.secrets import LONG_TOKEN, phrase_flags

# -- MinHash --------------------------------------------------------------------------------------

NUM_PERM = 64
SEED = 1
SCHEME = "affine32"
# Bytes per shingle, starting at each word start (about two words): one changed word in a
# 50-word record leaves Jaccard ~0.89; 16 bytes would drop it to ~0.86, at the 0.85 threshold.
_WINDOW = 12
_PAD = b"\x00" * 16  # >= _WINDOW, and enough for the 8-byte reads at any word start
_STR_PAD = "\x00" * len(_PAD)
_SPACE_TABLE = bytes(32 if chr(i) in " \t\n\r\f\v" else i for i in range(256))
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_K3 = np.uint64(0x165667B19E3779F9)
_MASK32 = np.uint64(0xFFFFFFFF)


_PHRASE_BATCH = 4096


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations for (NUM_PERM, SEED), drawn here the way its
    MinHash._init_permutations draws them (a test compares the two): importing datasketch pulls
    in scipy (~1 s), which every ingest worker's fork server would otherwise pay first."""
    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_FMIX = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def _fmix32(hv: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer datasketch applies before its affine32 permutations."""
    s1, m1, s2, m2 = _FMIX
    hv = hv ^ (hv >> s1)
    hv *= m1
    hv ^= hv >> s2
    hv *= m2
    hv ^= hv >> s1
    return hv


# Per-byte class counts packed in one uint64 (21 bits each: letters, digits, spaces), so one
# gather and one reduceat give all three per text (texts up to 2 MiB; longer ones fall back).
_FIELD = 21
_CLASS_COUNTS = np.array(
    [
        (1 if 97 <= i <= 122 else 0)
        | ((1 if 48 <= i <= 57 else 0) << _FIELD)
        | ((1 if i == 32 else 0) << (2 * _FIELD))
        for i in range(256)
    ],
    dtype=np.uint64,
)
_FIELD_MASK = np.uint64((1 << _FIELD) - 1)


def _shingles(
    texts: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a batch of texts: 32-bit hashes of the 16-byte windows at every word start (lower-cased),
    the index of the text each hash belongs to, and per text whether it holds 12 consecutive
    BIP-39 words (a recovery phrase). Texts are laid out with zero padding between them so a
    window never reaches into the next text. Also per text: its digit count and letter ratio."""
    joined = _STR_PAD.join(texts)
    if joined.isascii():  # one lower/encode/translate for the batch; sizes stay as they are
        buf = (_STR_PAD + joined + _STR_PAD * 2).lower().encode("ascii").translate(_SPACE_TABLE)
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        all_ascii = True
    else:
        encoded = [t.lower().encode("utf-8").translate(_SPACE_TABLE) for t in texts]
        buf = _PAD + _PAD.join(encoded) + _PAD * 2
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        all_ascii = False
    arr = np.frombuffer(buf, dtype=np.uint8)
    lengths = sizes + len(_PAD)
    starts = np.cumsum(lengths) - lengths + len(_PAD)
    n = len(texts)
    # byte-class counts per text: each segment runs from a text's start to the next one's, and
    # padding bytes count as nothing
    if n and int(sizes.max()) < (1 << _FIELD):
        packed = np.add.reduceat(np.take(_CLASS_COUNTS, arr), starts)
        letters = (packed & _FIELD_MASK).astype(np.int64)
        digits = ((packed >> np.uint64(_FIELD)) & _FIELD_MASK).astype(np.int64)
        spaces = (packed >> np.uint64(2 * _FIELD)).astype(np.int64)
    else:

        def per_text(mask: np.ndarray) -> np.ndarray:
            return (
                np.asarray(np.add.reduceat(mask, starts, dtype=np.int64))
                if n
                else np.zeros(0, np.int64)
            )

        digits = per_text((arr >= 48) & (arr <= 57))
        letters = per_text((arr >= 97) & (arr <= 122))
        spaces = per_text(arr == 32)
    nonspace = sizes - spaces
    ratio = np.where(nonspace > 0, letters / np.maximum(nonspace, 1), 0.0)
    if not all_ascii:
        for i, e in enumerate(encoded):
            if not e.isascii():  # non-ASCII letters: count them properly
                ratio[i] = letter_ratio(texts[i])
    # a word starts at a non-space byte after a space or after the padding, and ends before one
    # (the buffer starts and ends with padding: words start and end in turn)
    sep = (arr == 32) | (arr == 0)
    edges = np.flatnonzero(sep[1:] != sep[:-1]) + 1
    pos, ends = edges[0::2], edges[1::2]
    # (an overlapping, unaligned view: index it, never np.take, which copies it whole first)
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    x1: np.ndarray = words[pos]
    x2: np.ndarray = np.bitwise_and(words[pos + 8], _MASK32)  # bytes 8..11 of the window
    h: np.ndarray = x1 * _K1 + (x2 ^ (x2 >> np.uint64(13))) * _K2
    h ^= h >> np.uint64(32)
    h *= _K3
    h ^= h >> np.uint64(29)
    hv = (h >> np.uint64(32)).astype(np.uint32)
    # words per text from where each text's first word is (starts are sorted, so are word starts)
    first = np.searchsorted(pos, starts)
    owner = np.repeat(np.arange(n), np.diff(first, append=len(pos)))
    # the longest whitespace-separated word of each text (a long one may be a base64 token)
    wlen = ends - pos
    longest = np.zeros(n, dtype=np.int64)
    has_words = np.diff(first, append=len(pos)) > 0
    if np.any(has_words):
        longest[has_words] = np.maximum.reduceat(wlen, first[has_words])
    return hv, owner, longest, digits, ratio


def shingle_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    hv, owner, *_ = _shingles(texts)
    return hv, owner


@dataclass
class TextStats:
    """What one vectorised pass over a batch of texts yields (see analyze)."""

    sigs: np.ndarray  # (n, NUM_PERM) uint32 MinHash signatures
    mnemonic: np.ndarray  # bool: holds a recovery phrase (secrets.phrase_flags)
    digits: np.ndarray  # ASCII digit count
    letter_ratio: np.ndarray  # letters among non-space characters
    long_token: np.ndarray  # bool: a whitespace-free run of >= 40 bytes (maybe base64)


def signatures(texts: Sequence[str], batch: int = 256, sample: int = 1) -> np.ndarray:
    return analyze(texts, batch, sample).sigs


def analyze(texts: Sequence[str], batch: int = 256, sample: int = 1) -> TextStats:
    """MinHash signatures, shape (len(texts), NUM_PERM) uint32, plus what the secret scan needs
    per text (see TextStats). For each text the signature equals datasketch's
    MinHash(num_perm=64, seed=1, scheme='affine32').update_batch(h) over its shingle hashes h
    (with sample > 1, only those with h % sample == 0: content-defined sampling keeps estimates
    consistent between texts and cuts the work, but makes short texts noisy, so it is off by
    default). A text with no shingle keeps the empty signature (all 0xFFFFFFFF) and is skipped
    by near-duplicate detection."""
    a, b = _permutations()
    out = np.full((len(texts), NUM_PERM), EMPTY, dtype=np.uint32)
    mnemonic = np.zeros(len(texts), dtype=bool)
    long_token = np.zeros(len(texts), dtype=bool)
    digits = np.zeros(len(texts), dtype=np.int64)
    ratio = np.zeros(len(texts), dtype=np.float64)
    for lo in range(0, len(texts), _PHRASE_BATCH):  # bigger batches: fewer numpy calls
        mnemonic[lo : lo + _PHRASE_BATCH] = phrase_flags(texts[lo : lo + _PHRASE_BATCH])
    for lo in range(0, len(texts), batch):
        part = texts[lo : lo + batch]
        hv, owner, longest, dg, rt = _shingles(part)
        long_token[lo : lo + batch] = longest >= LONG_TOKEN
        digits[lo : lo + batch] = dg
        ratio[lo : lo + batch] = rt
        if sample > 1:
            keep = hv % np.uint32(sample) == 0
            hv, owner = hv[keep], owner[keep]
        if not len(hv):
            continue
        mixed = _fmix32(hv)
        # where each text's shingles start (owners are sorted), and which text that is
        firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        rows = lo + owner[firsts]
        # sub-chunks of whole texts, ~4096 shingles each, keep the (64 x shingles) matrix in cache
        step = 4096
        k, n_firsts = 0, len(firsts)
        while k < n_firsts:
            s = int(firsts[k])
            k2 = int(np.searchsorted(firsts, s + step))  # the texts starting before s + step
            e = int(firsts[k2]) if k2 < n_firsts else len(hv)
            # (permutations x shingles): the per-text min is then a fast reduceat along rows
            phv = np.multiply.outer(a, mixed[s:e])
            phv += b[:, None]
            out[rows[k:k2]] = np.minimum.reduceat(phv, firsts[k:k2] - s, axis=1).T
            k = k2
    return TextStats(out, mnemonic, digits, ratio, long_token)


EMPTY = np.uint32(0xFFFFFFFF)


def empty_rows(sigs: np.ndarray) -> np.ndarray:
    """True for texts with no sampled shingle (no signature)."""
    return np.asarray((sigs == EMPTY).all(axis=1))


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (used to confirm LSH candidates)."""
    hv, owner = shingle_hashes([a, b])
    sa, sb = set(hv[owner == 0].tolist()), set(hv[owner == 1].tolist())
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0
