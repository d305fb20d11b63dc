"""Record quality: a validation score in [0, 1] with reasons, PII and secret scanning, and
exact / near-duplicate detection (MinHash with datasketch).

Secrets that would hand over funds (Ethereum private keys, PEM private keys, BIP-39 mnemonics) and
API keys make a record *refused*: it is never stored. E-mail addresses and phone numbers are
flagged as PII and lower the score, so `curate --accept-all --min-score` leaves them for review.

Speed (ingest is meant to run at tens of MB/s): one numpy pass over a batch of texts gives the
shingle hashes, the MinHash signatures (bit-for-bit what datasketch's `MinHash.update_batch`
gives for the same shingle hashes, tested), recovery-phrase candidates, digit counts and letter
ratios; literal checks over the whole batch skip regexes that cannot match. Near duplicates are
found by LSH banding with datasketch's (bands, rows) choice, then the Jaccard estimate."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.core.config import IngestConfig

# -- secrets and PII ----------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Separated digit groups ("+1 415 555 2671", "(020) 7946-0958") or E.164 ("+14155552671").
_PHONE = re.compile(
    r"(?:\+\d{1,3}[ .-]?|\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\(?\d{2,4}\)?[ .-]\d{3,4}(?:[ .-]\d{2,4})?|\+\d{10,14}"
)
_HEX64 = re.compile(r"\b(?:0x)?[0-9a-fA-F]{64}\b")
_HASH_WORDS = re.compile(
    r"(hash|digest|sha|root|checksum|tx|block|merkle|leaf|commit)\W{0,3}\S{0,12}\W{0,3}$", re.I
)
_API_KEYS = (
    ("sk-", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("sk_live_", re.compile(r"\bsk_live_[A-Za-z0-9]{16,}")),
    ("AKIA", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("ghp_", re.compile(r"\bghp_[A-Za-z0-9]{36}\b")),
    ("github_pat_", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}")),
    ("xox", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("AIza", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("hf_", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
)
# A character each key pattern cannot match without ("xox" needs the '-' after its letter);
# "" marks the two without one, searched together.
_GATE = {
    "sk-": "-",
    "sk_live_": "_",
    "AKIA": "",
    "ghp_": "_",
    "github_pat_": "_",
    "xox": "-",
    "AIza": "",
    "hf_": "_",
}
_AKIA_AIZA = re.compile("AKIA|AIza")


@lru_cache(maxsize=1)
def bip39_index() -> dict[str, int]:
    """The BIP-39 English list (word -> index 0..2047), read from eth-account's copy without
    importing eth-account (slow)."""
    import importlib.util

    spec = importlib.util.find_spec("eth_account")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "hdaccount" / "wordlist" / "english.txt"
    words = [w for w in path.read_text("utf-8").split() if w]
    assert len(words) == 2048
    return {w: i for i, w in enumerate(words)}


@lru_cache(maxsize=1)
def bip39_words() -> frozenset[str]:
    return frozenset(bip39_index())


_MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)


def bip39_checksum_ok(words: Sequence[str]) -> bool:
    """True when `words` (12/15/18/21/24 BIP-39 words) carry a valid checksum: the last
    len/3 bits of the 11-bit indexes are the first bits of sha256(entropy)."""
    n_words = len(words)
    if n_words not in _MNEMONIC_LENGTHS:
        return False
    index = bip39_index()
    value = 0
    for w in words:
        i = index.get(w)
        if i is None:
            return False
        value = (value << 11) | i
    cs = n_words // 3  # checksum bits
    ent_bits = n_words * 11 - cs
    entropy = (value >> cs).to_bytes(ent_bits // 8, "big")
    return hashlib.sha256(entropy).digest()[0] >> (8 - cs) == value & ((1 << cs) - 1)


@dataclass
class Scan:
    pii: list[str]  # kinds found: "email", "phone"
    refused: str | None  # why the record must never be stored


def _hex_is_secret(text: str, m: re.Match[str]) -> bool:
    """A 64-hex string is a private key unless its context says it is a hash."""
    before = text[max(0, m.start() - 40) : m.start()]
    return not _HASH_WORDS.search(before)


def _has_mnemonic(text: str) -> bool:
    """A recovery phrase: 12/15/18/21/24 consecutive BIP-39 words with a valid checksum (any
    12 list words in a row without one are ordinary prose, e.g. a word list or a poem)."""
    words = text.lower().split()
    # membership flags as bytes, then a substring search (C speed) rules most texts out
    flags = bytes(map(bip39_words().__contains__, words))
    run = b"\x01" * 12
    start = flags.find(run)
    while start >= 0:
        end = start
        while end < len(flags) and flags[end]:
            end += 1
        for length in _MNEMONIC_LENGTHS:
            for i in range(start, end - length + 1):
                if bip39_checksum_ok(words[i : i + length]):
                    return True
        start = flags.find(run, end)
    return False


_DIGITS = b"0123456789"


def _digit_count(text: str) -> int:
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _DIGITS))


def scan(text: str) -> Scan:
    """Scan one text (see scan_many for the batched form used by ingest)."""
    return scan_many([text])[0]


_RUN = 12  # BIP-39 phrases are 12-24 words


def scan_many(
    texts: Sequence[str],
    maybe_mnemonic: Sequence[bool] | None = None,
    digits: Sequence[int] | None = None,
) -> list[Scan]:
    """Secrets and PII for many texts. Literal checks run once over all texts first, so a
    pattern absent from the whole batch costs nothing per text. `maybe_mnemonic` (from
    analyze()) says which texts hold 12 BIP-39 words in a row; without it every text is checked."""
    pii, refused = scan_many_flat(texts, maybe_mnemonic, digits)
    return [Scan(list(p), r) for p, r in zip(pii, refused, strict=True)]


def scan_many_flat(
    texts: Sequence[str],
    maybe_mnemonic: Sequence[bool] | None = None,
    digits: Sequence[int] | None = None,
) -> tuple[list[tuple[str, ...]], list[str | None]]:
    """scan_many() as two flat lists, PII kinds (mostly the empty tuple) and refusal reasons:
    no object per text for the garbage collector to track while a big file is scanned."""
    joined = "\x00".join(texts)
    # One-character gates (memchr speed) rule out whole groups of literals before the slower
    # substring searches: every literal but AKIA/AIza holds '-' or '_'.
    dash, under = "-" in joined, "_" in joined
    pem = dash and "PRIVATE KEY-----" in joined
    gates = {"-": dash, "_": under, "": _AKIA_AIZA.search(joined) is not None}
    literals = [(lit, rx) for lit, rx in _API_KEYS if gates[_GATE[lit]] and lit in joined]
    at = "@" in joined
    if maybe_mnemonic is None:
        maybe_mnemonic = [True] * len(texts)
    pii_out: list[tuple[str, ...]] = []
    refused_out: list[str | None] = []
    for i, text in enumerate(texts):
        refused = None
        n_digits = _digit_count(text) if digits is None else digits[i]
        if pem and "PRIVATE KEY-----" in text:
            refused = "holds a PEM private key"
        # A random 64-hex key has ~40 digits; fewer than 16 is (practically) never a key.
        elif n_digits >= 16 and any(_hex_is_secret(text, m) for m in _HEX64.finditer(text)):
            refused = "holds what looks like an Ethereum private key (64 hex characters)"
        elif maybe_mnemonic[i] and _has_mnemonic(text):
            refused = "holds what looks like a wallet recovery phrase (BIP-39 words with a valid checksum)"
        else:
            for literal, rx in literals:
                if literal in text and rx.search(text):
                    refused = "holds what looks like an API key"
                    break
        email = at and "@" in text and _EMAIL.search(text) is not None
        phone = n_digits >= 10 and _has_phone(text)
        pii_out.append(_PII_KINDS[email, phone])
        refused_out.append(refused)
    return pii_out, refused_out


_PII_KINDS = {
    (False, False): (),
    (True, False): ("email",),
    (False, True): ("phone",),
    (True, True): ("email", "phone"),
}


_PHONE_HINT = re.compile(r"[+(\d][\d ().-]{8,}\d")


def _has_phone(text: str) -> bool:
    # cheap pass for digit runs long enough to be a number, then the exact pattern inside them
    for hint in _PHONE_HINT.finditer(text):
        if _phone_in(text, hint.start(), hint.end()):
            return True
    return False


def _phone_in(text: str, pos: int, endpos: int) -> bool:
    for m in _PHONE.finditer(text, pos, endpos):
        digits = sum(c.isdigit() for c in m.group())
        before = text[m.start() - 1 : m.start()] if m.start() else ""
        if 10 <= digits <= 15 and not (before and (before.isalnum() or before in ".-")):
            return True
    return False


# -- score ----------------------------------------------------------------------------------------

_ASCII_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WHITESPACE = b" \t\n\r\f\v"
_NON_LETTER = re.compile(r"[\W\d_]+")


def letter_ratio(text: str) -> float:
    """Letters among non-space characters (C-speed for ASCII, regex otherwise)."""
    if text.isascii():
        raw = text.encode("ascii")
        nonspace = len(raw.translate(None, _WHITESPACE))
        others = len(raw.translate(None, _ASCII_LETTERS + _WHITESPACE))
        return (nonspace - others) / nonspace if nonspace else 0.0
    compact = "".join(text.split())
    if not compact:
        return 0.0
    letters = len(_NON_LETTER.sub("", compact))
    return letters / len(compact)


PENALTY = {
    "too_short": 0.5,
    "too_long": 0.3,
    "non_text": 0.5,
    "exact_duplicate": 1.0,
    "near_duplicate": 0.5,
    "pii": 0.3,
}


def assess(
    text: str,
    cfg: IngestConfig,
    *,
    pii: Sequence[str] = (),
    exact_duplicate_of: int | None = None,
    near_duplicate_of: int | None = None,
    similarity: float = 0.0,
    ratio: float | None = None,
) -> tuple[float, list[str]]:
    """Validation score in [0, 1] and the human reasons behind it (ratio: letter_ratio if known)."""
    score = 1.0
    reasons: list[str] = []
    n = len(text)
    if n < cfg.min_chars:
        score -= PENALTY["too_short"]
        reasons.append(f"too short ({n} chars < {cfg.min_chars})")
    elif n > cfg.max_chars:
        score -= PENALTY["too_long"]
        reasons.append(f"too long ({n} chars > {cfg.max_chars})")
    ratio = letter_ratio(text) if ratio is None else ratio
    if ratio < 0.5:
        score -= PENALTY["non_text"]
        reasons.append(f"mostly non-text ({ratio:.0%} letters)")
    if exact_duplicate_of is not None:
        score -= PENALTY["exact_duplicate"]
        reasons.append(f"exact duplicate of record #{exact_duplicate_of}")
    elif near_duplicate_of is not None:
        score -= PENALTY["near_duplicate"]
        reasons.append(f"near duplicate of record #{near_duplicate_of} (~{similarity:.0%} similar)")
    if pii:
        score -= PENALTY["pii"]
        reasons.append("PII found: " + ", ".join(pii))
    return round(max(0.0, min(1.0, score)), 3), reasons


def unflagged_ok(lengths: np.ndarray, ratios: np.ndarray, cfg: IngestConfig) -> np.ndarray:
    """Per text (its length, its letter ratio): True where assess() without PII or duplicate flags
    gives (1.0, []), i.e. the length is within bounds and the ratio is not low (keep in step)."""
    return np.asarray((lengths >= cfg.min_chars) & (lengths <= cfg.max_chars) & (ratios >= 0.5))


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


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _fmix32(hv: np.ndarray) -> np.ndarray:
    from datasketch.minhash import _fmix

    return _fmix(hv, 32)


_K4 = np.uint64(0xFF51AFD7ED558CCD)


def _bucket(codes: np.ndarray) -> np.ndarray:
    return ((codes * _K4) >> np.uint64(48)).astype(np.intp)


@lru_cache(maxsize=1)
def _bip39_codes() -> tuple[np.ndarray, ...]:
    """Each BIP-39 word (3-8 ASCII letters) as the little-endian uint64 of its bytes, in a hash
    table of 2^16 buckets: as many uint64 arrays as the fullest bucket holds words (two), array k
    holding each bucket's k-th word or 0 (never a word's code), so membership is a few lookups."""
    codes = sorted(int.from_bytes(w.encode("ascii"), "little") for w in bip39_words())
    buckets = _bucket(np.array(codes, dtype=np.uint64)).tolist()
    slots: list[np.ndarray] = []
    for code, bucket in zip(codes, buckets, strict=True):
        k = 0
        while k < len(slots) and slots[k][bucket]:
            k += 1
        if k == len(slots):
            slots.append(np.zeros(1 << 16, dtype=np.uint64))
        slots[k][bucket] = code
    return tuple(slots)


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
# A word of n <= 8 bytes is its first 8 bytes with the bytes past n zeroed.
_WORD_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


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
    sep = (arr == 32) | (arr == 0)
    pos = np.flatnonzero(~sep[1:] & sep[:-1]) + 1
    ends = np.flatnonzero(sep[1:] & ~sep[:-1]) + 1
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    x1: np.ndarray = np.take(words, pos)
    x2: np.ndarray = np.bitwise_and(np.take(words, pos + 8), _MASK32)  # bytes 8..11 of the window
    h: np.ndarray = x1 * _K1 + (x2 ^ (x2 >> np.uint64(13))) * _K2
    h ^= h >> np.uint64(32)
    h *= _K3
    h ^= h >> np.uint64(29)
    hv = (h >> np.uint64(32)).astype(np.uint32)
    # words per text from where each text's first word is (starts are sorted, so are word starts)
    first = np.searchsorted(pos, starts)
    owner = np.repeat(np.arange(n), np.diff(first, append=len(pos)))
    # recovery phrases: a word of <= 8 bytes is its first 8 bytes masked to its length
    mnemonic = np.zeros(n, dtype=bool)
    wlen = ends - pos
    short = wlen <= 8
    if np.count_nonzero(short) >= _RUN:
        masked = x1 & np.take(_WORD_MASKS, np.minimum(wlen, 8))
        bucket = _bucket(masked)
        member = np.zeros(len(masked) + 1, dtype=bool)
        for slot in _bip39_codes():
            member[1:] |= np.take(slot, bucket) == masked
        member[1:] &= short
        run = np.cumsum(member, dtype=np.int32)  # run[j + 12] - run[j]: members in words j..j+11
        hits = np.flatnonzero(run[_RUN:] - run[:-_RUN] == _RUN)
        same = owner[hits] == owner[hits + _RUN - 1]
        mnemonic[owner[hits[same]]] = True
    return hv, owner, mnemonic, digits, ratio


def shingle_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    hv, owner, *_ = _shingles(texts)
    return hv, owner


@dataclass
class TextStats:
    """What one vectorised pass over a batch of texts yields (see analyze)."""

    sigs: np.ndarray  # (n, NUM_PERM) uint32 MinHash signatures
    mnemonic: np.ndarray  # bool: 12 BIP-39 words in a row somewhere in the text
    digits: np.ndarray  # ASCII digit count
    letter_ratio: np.ndarray  # letters among non-space characters


def signatures(texts: Sequence[str], batch: int = 256, sample: int = 1) -> np.ndarray:
    return analyze(texts, batch, sample).sigs


def analyze(texts: Sequence[str], batch: int = 256, sample: int = 1) -> TextStats:
    """MinHash signatures, shape (len(texts), NUM_PERM) uint32, and per text whether it holds 12
    BIP-39 words in a row (see _shingles). For each text the signature equals datasketch's
    MinHash(num_perm=64, seed=1, scheme='affine32').update_batch(h) over its shingle hashes h
    (with sample > 1, only those with h % sample == 0: content-defined sampling keeps estimates
    consistent between texts and cuts the work, but makes short texts noisy, so it is off by
    default). A text with no shingle keeps the empty signature (all 0xFFFFFFFF) and is skipped
    by near-duplicate detection."""
    a, b = _permutations()
    out = np.full((len(texts), NUM_PERM), EMPTY, dtype=np.uint32)
    mnemonic = np.zeros(len(texts), dtype=bool)
    digits = np.zeros(len(texts), dtype=np.int64)
    ratio = np.zeros(len(texts), dtype=np.float64)
    for lo in range(0, len(texts), batch):
        hv, owner, mn, dg, rt = _shingles(texts[lo : lo + batch])
        mnemonic[lo : lo + batch] = mn
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
    return TextStats(out, mnemonic, digits, ratio)


EMPTY = np.uint32(0xFFFFFFFF)


def empty_rows(sigs: np.ndarray) -> np.ndarray:
    """True for texts with no sampled shingle (no signature)."""
    return np.asarray((sigs == EMPTY).all(axis=1))


@lru_cache(maxsize=8)
def lsh_params(threshold: float) -> tuple[int, int]:
    """(bands, rows) minimising false positives + negatives at this threshold (datasketch's choice)."""
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, NUM_PERM, 0.5, 0.5)
    return int(b), int(r)


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (used to confirm LSH candidates)."""
    hv, owner = shingle_hashes([a, b])
    sa, sb = set(hv[owner == 0].tolist()), set(hv[owner == 1].tolist())
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


class DuplicateIndex:
    """Near-duplicate lookup: LSH banding over the MinHash signatures gives candidates; those whose MinHash estimate is near the threshold
    are then confirmed with the exact Jaccard of the two texts (see Datanets), because with 64
    slots the estimate alone is +-0.04 and would decide pairs around the threshold by chance.
    Band keys live in one sorted numpy array (with the record id of each), so a whole file's
    records are looked up and added with a few vector operations; only records that share a
    band key with an earlier one reach Python."""

    MARGIN = 0.15  # candidates down to threshold - MARGIN (estimate) get the exact check
    # At most this many earlier records per shared band key are looked at: many copies of one
    # record (identical signatures) would otherwise make candidate sets quadratic in their number.
    CAP = 32

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        # Bands as datasketch would pick them for a lower threshold (0.85 -> 12 bands of 5): at
        # J = 0.85 the 64-slot agreement can be as low as 0.77, and 12x5 still finds ~98% of such
        # pairs; false candidates are cheap to drop.
        self.b, self.r = lsh_params(round(max(0.3, threshold - 0.3), 2))
        # every band key of every indexed record, sorted, and the record id beside each
        self._keys = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=np.int64)
        self.sigs: dict[int, np.ndarray] = {}

    def band_key_array(self, sigs: np.ndarray) -> np.ndarray:
        """(n, bands) int64: 30 bits of band hash, the band number above them."""
        n = len(sigs)
        v = sigs[:, : self.b * self.r].reshape(n, self.b, self.r).astype(np.uint64)
        h = np.zeros((n, self.b), dtype=np.uint64)
        for j in range(self.r):
            h = (h ^ v[:, :, j]) * _K1
            h ^= h >> np.uint64(31)
        band = np.arange(self.b, dtype=np.int64) << 30
        return np.asarray((h >> np.uint64(34)).astype(np.int64) | band)

    def band_keys(self, sigs: np.ndarray) -> list[list[int]]:
        """One key per band per signature (see band_key_array)."""
        return self.band_key_array(sigs).tolist() if len(sigs) else []

    def add(self, key: int, sig: np.ndarray, keys: list[int]) -> None:
        if key not in self.sigs:
            self.check_and_add(key, sig, keys)

    def add_many(self, ids: Sequence[int], sigs: np.ndarray) -> None:
        """add() for many records (ids already indexed are skipped)."""
        keep = [i for i, key in enumerate(ids) if key not in self.sigs]
        if keep:
            self.check_and_add_many([ids[i] for i in keep], sigs[keep], collect=False)

    def _rank(
        self, cands: set[int] | None, sig: np.ndarray, exclude: int | None
    ) -> list[tuple[int, float]]:
        out = []
        for other in cands or ():
            if other == exclude or other not in self.sigs:
                continue
            est = float(np.count_nonzero(self.sigs[other] == sig)) / NUM_PERM
            if est >= self.threshold - self.MARGIN:
                out.append((other, est))
        out.sort(key=lambda c: (-c[1], c[0]))
        return out[:5]

    def check_and_add(self, key: int, sig: np.ndarray, keys: list[int]) -> list[tuple[int, float]]:
        """candidates() then add(), in one step."""
        return self.check_and_add_many([key], sig[None, :], np.array([keys], dtype=np.int64)).get(
            key, []
        )

    def check_and_add_many(
        self,
        ids: Sequence[int],
        sigs: np.ndarray,
        keys: np.ndarray | None = None,
        collect: bool = True,
    ) -> dict[int, list[tuple[int, float]]]:
        """check_and_add() for records in id order, each against the index and the records
        before it in the list; returns the ranked candidates of those that have any."""
        n = len(ids)
        if not n:
            return {}
        if keys is None:
            keys = self.band_key_array(sigs)
        ids_arr = np.asarray(ids, dtype=np.int64)
        # (band key, row) pairs packed in one int64 and sorted: by key, then row (a plain sort is
        # much faster than a stable argsort)
        bits = max(1, (n - 1).bit_length())
        if int(keys.max()).bit_length() + bits <= 63:
            packed = np.sort(((keys << bits) | np.arange(n)[:, None]).ravel())
            sk, rows = packed >> bits, packed & ((1 << bits) - 1)
        else:
            flat = keys.ravel()
            order = np.argsort(flat, kind="stable")
            sk, rows = flat[order], order // keys.shape[1]
        cands: dict[int, set[int]] = {}
        # against the index (sorted queries keep the binary searches cache-friendly)
        at = np.searchsorted(self._keys, sk, side="left")
        if len(self._keys):
            hits = np.flatnonzero(self._keys[np.minimum(at, len(self._keys) - 1)] == sk)
            for j in hits.tolist():
                lo = int(at[j])
                hi = int(np.searchsorted(self._keys, sk[j], side="right"))
                if collect:
                    cands.setdefault(int(rows[j]), set()).update(
                        self._ids[max(lo, hi - self.CAP) : hi].tolist()
                    )
                at[j] = hi  # insert after the equal keys
        # within the batch: in a run of equal keys each record sees the ones before it (rows are
        # ascending inside a run; a record never repeats a key)
        same = np.flatnonzero(sk[1:] == sk[:-1]) + 1
        if collect and len(same):
            first = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            run_start = first[np.searchsorted(first, same, side="right") - 1]
            for p, s in zip(same.tolist(), run_start.tolist(), strict=True):
                cands.setdefault(int(rows[p]), set()).update(
                    ids_arr[rows[max(s, p - self.CAP) : p]].tolist()
                )
        # merge: the new entries go before the index entries from `at` on (one mask for both arrays)
        dest = at + np.arange(len(sk))
        fresh = np.zeros(len(self._keys) + len(sk), dtype=bool)
        fresh[dest] = True
        merged_keys = np.empty(len(fresh), dtype=np.int64)
        merged_ids = np.empty(len(fresh), dtype=np.int64)
        merged_keys[dest], merged_ids[dest] = sk, ids_arr[rows]
        merged_keys[~fresh], merged_ids[~fresh] = self._keys, self._ids
        self._keys, self._ids = merged_keys, merged_ids
        self.sigs.update(zip(ids_arr.tolist(), sigs, strict=True))
        out = {}
        for i, found in cands.items():
            ranked = self._rank(found, sigs[i], int(ids_arr[i]))
            if ranked:
                out[int(ids_arr[i])] = ranked
        return out

    def candidates(
        self, sig: np.ndarray, keys: list[int], exclude: int | None = None
    ) -> list[tuple[int, float]]:
        """Up to 5 (key, estimated Jaccard) worth an exact check, best first."""
        cands: set[int] = set()
        for k in keys:
            lo = int(np.searchsorted(self._keys, k, side="left"))
            hi = int(np.searchsorted(self._keys, k, side="right"))
            cands.update(self._ids[max(lo, hi - self.CAP) : hi].tolist())
        return self._rank(cands, sig, exclude)
