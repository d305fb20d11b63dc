"""Secrets that must never be stored, and personal data that lowers a record's score.

Refused outright (the record is never written): Ethereum private keys (64 hex, also split over
lines, grouped, or base64-encoded), BIP-39 recovery phrases (checksum-valid, however the words are
joined or numbered), PEM / OpenSSH / PGP private keys, and API tokens (OpenAI, AWS, GitHub, GitLab,
Slack, Stripe, Google, Hugging Face, SendGrid, PyPI, npm, JWTs, Azure storage keys, passwords in
URLs). Flagged as PII: e-mail addresses and phone numbers.

Every text is normalised first (NFKC, any Unicode space to a space, zero-width and other format
characters removed), so a no-break space or a zero-width joiner cannot hide a secret. Recovery
phrases use one tokeniser, the runs of ASCII letters of the normalised lower-cased text (so
quotes, commas, numbering, hyphens, JSON brackets or a trailing period never split or hide a
word); it runs vectorised over a whole batch and the checksum is then checked on its tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# -- normalisation --------------------------------------------------------------------------------

# Unicode spaces (Zs, plus the line/paragraph separators) become a plain space; format characters
# (Cf: zero-width space/joiner, soft hyphen, BOM, bidi marks) are removed.
_SPACE_OR_FORMAT = {
    cp: (" " if unicodedata.category(chr(cp)) in ("Zs", "Zl", "Zp") else None)
    for cp in range(0x80, 0x30000)
    if unicodedata.category(chr(cp)) in ("Zs", "Zl", "Zp", "Cf")
}
_SPACE_OR_FORMAT.update({0x85: " "})


def normalize(text: str) -> str:
    """The text every secret check reads: NFKC (full-width digits, ligatures), Unicode spaces as
    ' ', format characters dropped. ASCII text is returned as it is."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_SPACE_OR_FORMAT)


# -- BIP-39 recovery phrases ---------------------------------------------------------------------


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


MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)
_RUN = MNEMONIC_LENGTHS[0]


def _checksum_ok_indexes(idx: Sequence[int]) -> bool:
    n_words = len(idx)
    value = 0
    for i in idx:
        value = (value << 11) | i
    cs = n_words // 3  # checksum bits
    entropy = (value >> cs).to_bytes((n_words * 11 - cs) // 8, "big")
    return hashlib.sha256(entropy).digest()[0] >> (8 - cs) == value & ((1 << cs) - 1)


def bip39_checksum_ok(words: Sequence[str]) -> bool:
    """True when `words` (12/15/18/21/24 BIP-39 words) carry a valid checksum: the last
    len/3 bits of the 11-bit indexes are the first bits of sha256(entropy)."""
    if len(words) not in MNEMONIC_LENGTHS:
        return False
    index = bip39_index()
    idx = [index.get(w, -1) for w in words]
    return -1 not in idx and _checksum_ok_indexes(idx)


def _has_valid_window(idx: Sequence[int]) -> bool:
    """Any 12/15/18/21/24 consecutive indexes in this run with a valid checksum."""
    for length in MNEMONIC_LENGTHS:
        for i in range(len(idx) - length + 1):
            if _checksum_ok_indexes(idx[i : i + length]):
                return True
    return False


def _bucket(codes: np.ndarray) -> np.ndarray:
    return ((codes * np.uint64(0xFF51AFD7ED558CCD)) >> np.uint64(48)).astype(np.intp)


@lru_cache(maxsize=1)
def _bip39_table() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Each BIP-39 word (3-8 ASCII letters) as the little-endian uint64 of its bytes, in a hash
    table of 2^16 buckets: one (codes, indexes) pair of arrays per slot (the fullest bucket holds
    two words), code 0 meaning empty (never a word's code)."""
    index = bip39_index()
    codes = sorted((int.from_bytes(w.encode("ascii"), "little"), i) for w, i in index.items())
    buckets = _bucket(np.array([c for c, _ in codes], dtype=np.uint64)).tolist()
    slots: list[tuple[np.ndarray, np.ndarray]] = []
    for (code, i), bucket in zip(codes, buckets, strict=True):
        k = 0
        while k < len(slots) and slots[k][0][bucket]:
            k += 1
        if k == len(slots):
            slots.append((np.zeros(1 << 16, dtype=np.uint64), np.zeros(1 << 16, dtype=np.int32)))
        slots[k][0][bucket] = code
        slots[k][1][bucket] = i
    return tuple(slots)


_WORD_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_PAD = b"\x00" * 16
_STR_PAD = "\x00" * 16


def phrase_tokens(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one tokeniser of the phrase check, vectorised over a batch: the runs of ASCII letters
    of each normalised, lower-cased text. Returns per token its owner (text index), its BIP-39
    index (-1 when not a list word) and its byte span start (for tests)."""
    first, index, starts, text_starts = _tokens(texts, only_runs=False)
    return np.searchsorted(text_starts, starts, side="right") - 1, index, starts


def _tokens(
    texts: Sequence[str], only_runs: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """phrase_tokens() as the phrase check uses it: per text the number of its first token
    (instead of an owner per token), and with only_runs the BIP-39 index looked up only for
    tokens in a run of at least _RUN tokens of 3-8 letters (a list word's length; other
    tokens keep -1, and no phrase can hold them)."""
    joined = _STR_PAD.join(texts)
    if joined.isascii():  # one lower/encode for the batch (normalize() keeps ASCII as it is)
        buf = (_STR_PAD + joined + _STR_PAD).lower().encode("ascii")
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    else:
        encoded = [normalize(t).lower().encode("utf-8", "surrogatepass") for t in texts]
        buf = _PAD + _PAD.join(encoded) + _PAD
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    arr = np.frombuffer(buf, dtype=np.uint8)
    text_starts = np.cumsum(sizes + len(_PAD)) - sizes
    letter = np.subtract(arr, 97, dtype=np.uint8) < 26  # a-z
    # the buffer starts and ends with padding: letter runs start and end in turn
    edges = np.flatnonzero(letter[1:] != letter[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    wlen = ends - starts
    index = np.full(len(starts), -1, dtype=np.int32)
    listed = (wlen >= 3) & (wlen <= 8)
    if only_runs:
        listed = _in_runs(listed, _RUN)
    if np.any(listed):
        # (an overlapping, unaligned view: index it, never np.take, which copies it whole first)
        words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        at = starts[listed]
        masked = words[at] & _WORD_MASKS[wlen[listed]]
        bucket = _bucket(masked)
        found = np.full(len(at), -1, dtype=np.int32)
        for codes, idx in _bip39_table():
            found = np.where(codes[bucket] == masked, idx[bucket], found)
        index[listed] = found
    return np.searchsorted(starts, text_starts), index, starts, text_starts


def _in_runs(mask: np.ndarray, k: int) -> np.ndarray:
    """True where mask is True inside a run of at least k Trues."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    rs, re_ = edges[0::2], edges[1::2]
    long = re_ - rs >= k
    if not np.any(long):
        return np.zeros(len(mask), dtype=bool)
    delta = np.zeros(len(mask) + 1, dtype=np.int32)
    np.add.at(delta, rs[long], 1)
    np.add.at(delta, re_[long], -1)
    return np.cumsum(delta[:-1]) > 0


def phrase_flags(texts: Sequence[str]) -> np.ndarray:
    """Per text: does it hold a recovery phrase, i.e. 12/15/18/21/24 consecutive BIP-39 tokens
    with a valid checksum (12 list words without one are ordinary prose: a word list, a poem)."""
    out = np.zeros(len(texts), dtype=bool)
    if not texts:
        return out
    first, index, _, _ = _tokens(texts, only_runs=True)
    member = index >= 0
    if np.count_nonzero(member) < _RUN:
        return out
    new_text = np.zeros(len(index) + 1, dtype=bool)
    new_text[first] = True  # (texts without tokens point past the end or at the next one)
    new_text[0] = True
    prev = np.r_[False, member[:-1]]
    run_starts = np.flatnonzero(member & (new_text[:-1] | ~prev))
    nxt = np.r_[member[1:], False]
    next_new = new_text[1:].copy()
    next_new[-1] = True
    run_ends = np.flatnonzero(member & (next_new | ~nxt)) + 1
    long = np.flatnonzero(run_ends - run_starts >= _RUN)
    for k in long.tolist():
        s, e = int(run_starts[k]), int(run_ends[k])
        t = int(np.searchsorted(first, s, side="right")) - 1
        if not out[t] and _has_valid_window(index[s:e].tolist()):
            out[t] = True
    return out


# -- private keys in hex or base64 ---------------------------------------------------------------

# Hex groups joined by spaces, a line break (with indentation) or a colon: a key written in one
# piece, split over two lines, grouped in fours, or as colon-separated bytes.
_HEX_RUN = re.compile(
    r"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{2,}"
    r"(?:(?:[ \t]*\n[ \t]*|[ \t]{1,3}|[ \t]?:[ \t]?)(?:0[xX])?[0-9a-fA-F]{2,})*(?![0-9A-Za-z])"
)
_HEX_GROUP = re.compile(r"(0[xX])?([0-9a-fA-F]+)")
# A hash label right before the value ("tx hash: 0x…", "sha256 = …", '"root": "0x…"') says it is
# a hash; a hash word earlier in the phrase ("key for the block producer: 0x…") does not. The
# label may end a longer word ("blockHash", "stateRoot").
_HASH_LABEL = re.compile(
    r"(?:hash(?:es)?|digest|sha-?(?:1|2|256|3|384|512)?(?:-256)?|keccak(?:-?256)?|blake2[bs]?|"
    r"checksum|root|merkle|txid|tx|transaction|block|commit|leaf|fingerprint)"
    r"[\"'`]?\s?(?:[:=#]|is|was|of)?\s{0,2}[\"'`(\[]?\s?$",
    re.IGNORECASE,
)
_HEX_LETTERS = frozenset("abcdefABCDEF")


def _hash_labelled(text: str, start: int) -> bool:
    return _HASH_LABEL.search(text, max(0, start - 48), start) is not None


def _looks_random_hex(hexdigits: str) -> bool:
    # A random 64-hex key has ~40 digits and ~24 letters; English words made of a-f letters
    # ("a bad cafe") or a table of numbers have far fewer of one or the other.
    letters = sum(c in _HEX_LETTERS for c in hexdigits)
    return letters >= 8 and len(hexdigits) - letters >= 16


def has_hex_key(text: str) -> bool:
    """64 hex characters, whole or in groups, not labelled as a hash right before them."""
    for m in _HEX_RUN.finditer(text):
        if m.end() - m.start() < 64:
            continue
        groups = [
            (g.start(), g.group(1) is not None, g.group(2)) for g in _HEX_GROUP.finditer(m.group())
        ]
        for i in range(len(groups)):
            total = 0
            for j in range(i, len(groups)):
                if j > i and groups[j][1]:
                    break  # a 0x starts another value
                total += len(groups[j][2])
                if total >= 64:
                    break
            if total != 64:
                continue
            digits = "".join(g[2] for g in groups[i : j + 1])
            start = m.start() + groups[i][0]
            if _looks_random_hex(digits) and not _hash_labelled(text, start):
                return True
    return False


_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{40,}={0,2}(?![A-Za-z0-9+/=_-])")


def _b64decode(token: str) -> bytes | None:
    body = token.rstrip("=")
    alt = b"-_" if ("-" in body or "_" in body) else b"+/"
    if alt == b"-_" and ("+" in body or "/" in body):
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=alt, validate=True)
    except (binascii.Error, ValueError):
        return None


def _base64_secret(text: str, depth: int) -> str | None:
    """A 32-byte value (a raw private key) or an encoded secret inside a long base64 token."""
    for m in _B64.finditer(text):
        raw = _b64decode(m.group())
        if raw is None:
            continue
        if len(raw) == 32 and not _hash_labelled(text, m.start()):
            return "holds what looks like a private key (32 bytes, base64-encoded)"
        if depth == 0 and raw.isascii() and raw.decode("ascii").isprintable():
            inner = _refusal_of(raw.decode("ascii"), depth=1)
            if inner:
                return inner.replace("holds what looks like", "holds base64 that decodes to")
    return None


# -- API tokens ------------------------------------------------------------------------------------

# (literals one of which every match contains, the pattern). Mostly detect-secrets' rules
# (aws, github_token, gitlab_token, slack, stripe, sendgrid, pypi_token, npm, jwt,
# azure_storage_key, basic_auth), widened where they were narrower than ours (sk- keys of any
# OpenAI/Anthropic project form, Stripe keys of any length >= 16).
_API_KEYS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("sk-",), re.compile(r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    (("k_live_",), re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}")),
    (
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        re.compile(r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    ),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"\bgh[pousr]_[A-Za-z0-9_]{36}")),
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}")),
    (
        ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glptt-", "glagent-"),
        re.compile(r"\bgl(?:pat|dt|ft|soat|rt|cbt|ptt|agent)-[A-Za-z0-9_-]{20,}"),
    ),
    (tuple(f"xox{c}-" for c in "abposr"), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    (("hooks.slack.com",), re.compile(r"hooks\.slack\.com/services/T\w+/B\w+/\w+")),
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    (("SG.",), re.compile(r"\bSG\.[\w-]{22}\.[\w-]{43}")),
    (("pypi-",), re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}")),
    (("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    (("AccountKey=",), re.compile(r"AccountKey=[A-Za-z0-9+/=]{88}")),
    (("://",), re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:[^\s:/@'\"]+@[\w.-]+", re.I)),
)
_PEM = re.compile(
    r"BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |SSH2 ENCRYPTED )?PRIVATE KEY|"
    r"BEGIN PGP PRIVATE KEY BLOCK|PuTTY-User-Key-File-"
)
_PEM_LITERALS = ("PRIVATE KEY", "PuTTY-User-Key-File-")
# AWS secret access keys: 40 base64 characters, mixed case with digits (a git SHA-1 is 40 hex)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
_AWS_CONTEXT = re.compile(r"aws|secret|access.?key", re.IGNORECASE)
LONG_TOKEN = 40  # bytes: shorter words are never checked as base64 or AWS secret keys


# One-character gates (memchr speed) rule out whole groups of literals before the slower
# substring searches: most literals hold a '_' or a '-', which prose often lacks.
_GATES = {
    lits: next((g for g in "_-" if all(g in lit for lit in lits)), "") for lits, _ in _API_KEYS
}


# several literals: one regex pass over the batch beats one substring search per literal
_ANY_OF = {lits: re.compile("|".join(map(re.escape, lits))) for lits, _ in _API_KEYS}


def _literals_in(joined: str) -> list[tuple[tuple[str, ...], re.Pattern[str]]]:
    """The API key patterns whose literals occur somewhere in this batch."""
    present = {g: g in joined for g in "_-"}
    present[""] = True
    return [
        (lits, rx)
        for lits, rx in _API_KEYS
        if present[_GATES[lits]]
        and (lits[0] in joined if len(lits) == 1 else _ANY_OF[lits].search(joined))
    ]


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _aws_secret(text: str) -> bool:
    for m in _AWS_SECRET.finditer(text):
        s = m.group()
        if s.isdigit() or all(c in "0123456789abcdefABCDEF" for c in s):
            continue
        digits = sum(c.isdigit() for c in s)
        if not (digits and any(c.isupper() for c in s) and any(c.islower() for c in s)):
            continue
        context = _AWS_CONTEXT.search(text, max(0, m.start() - 60), m.start()) is not None
        if _entropy(s) >= 4.3 and (context or "/" in s or "+" in s or digits >= 3):
            return True
    return False


def _refusal(
    text: str,
    *,
    n_digits: int,
    phrase: bool,
    long_token: bool,
    pem: bool = True,
    literals: Sequence[tuple[tuple[str, ...], re.Pattern[str]]] = _API_KEYS,
    depth: int = 0,
) -> str | None:
    """Why this normalised text must never be stored, or None (the gates come from the batch)."""
    if pem and any(lit in text for lit in _PEM_LITERALS) and _PEM.search(text):
        return "holds a PEM private key"
    # A random 64-hex key has ~40 digits; fewer than 16 is (practically) never a key.
    if n_digits >= 16 and has_hex_key(text):
        return "holds what looks like an Ethereum private key (64 hex characters)"
    if phrase:
        return "holds what looks like a wallet recovery phrase (BIP-39 words with a valid checksum)"
    for lits, rx in literals:
        if any(lit in text for lit in lits) and rx.search(text):
            return "holds what looks like an API key or access token"
    if long_token:
        if _aws_secret(text):
            return "holds what looks like an API key or access token (AWS secret key)"
        return _base64_secret(text, depth)
    return None


def _refusal_of(text: str, depth: int) -> str | None:
    """_refusal() for a text on its own (a decoded base64 token)."""
    return _refusal(
        text,
        n_digits=_digit_count(text),
        phrase=bool(phrase_flags([text])[0]),
        long_token=_has_long_token(text),
        depth=depth,
    )


def _has_long_token(text: str) -> bool:
    return any(len(w) >= LONG_TOKEN for w in text.split())


# -- PII ----------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Separated digit groups ("+1 415 555 2671", "(020) 7946-0958") or E.164 ("+14155552671").
_PHONE = re.compile(
    r"(?:\+\d{1,3}[ .-]?|\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\(?\d{2,4}\)?[ .-]\d{3,4}(?:[ .-]\d{2,4})?|\+\d{10,14}"
)
_PHONE_HINT = re.compile(r"[+(\d][\d ().-]{8,}\d")


def _has_phone(text: str) -> bool:
    # cheap pass for digit runs long enough to be a number, then the exact pattern inside them
    for hint in _PHONE_HINT.finditer(text):
        for m in _PHONE.finditer(text, hint.start(), hint.end()):
            digits = sum(c.isdigit() for c in m.group())
            before = text[m.start() - 1 : m.start()] if m.start() else ""
            if 10 <= digits <= 15 and not (before and (before.isalnum() or before in ".-")):
                return True
    return False


_DIGITS = b"0123456789"


def _digit_count(text: str) -> int:
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _DIGITS))


_PII_KINDS = {
    (False, False): (),
    (True, False): ("email",),
    (False, True): ("phone",),
    (True, True): ("email", "phone"),
}


# -- the scan ------------------------------------------------------------------------------------


@dataclass
class Scan:
    pii: list[str]  # kinds found: "email", "phone"
    refused: str | None  # why the record must never be stored


def scan(text: str) -> Scan:
    """Scan one text (see scan_many_flat for the batched form ingest uses)."""
    pii, refused = scan_many_flat([text])
    return Scan(list(pii[0]), refused[0])


def scan_many(texts: Sequence[str], **known: Sequence[bool] | Sequence[int] | None) -> list[Scan]:
    pii, refused = scan_many_flat(texts, **known)  # type: ignore[arg-type]
    return [Scan(list(p), r) for p, r in zip(pii, refused, strict=True)]


def scan_many_flat(
    texts: Sequence[str],
    phrase: Sequence[bool] | None = None,
    digits: Sequence[int] | None = None,
    long_token: Sequence[bool] | None = None,
) -> tuple[list[tuple[str, ...]], list[str | None]]:
    """PII kinds (mostly the empty tuple) and refusal reasons for many texts, as two flat lists
    (no object per text for the garbage collector to track while a big file is scanned).
    phrase / digits / long_token: per text, from minhash.analyze() (which computes them in its
    vectorised pass over the raw bytes); without them they are computed here. Literal checks run
    once over the whole batch first, so a pattern absent from it costs nothing per text."""
    joined = "\x00".join(texts)
    normed: Sequence[str]
    if joined.isascii():  # the usual case: normalize() keeps every text as it is
        normed = texts
    else:
        normed = [normalize(t) for t in texts]
        joined = "\x00".join(normed)
    if phrase is None:
        phrase = phrase_flags(normed).tolist()
    pem = any(lit in joined for lit in _PEM_LITERALS)
    literals = _literals_in(joined)
    at = "@" in joined
    n = len(texts)
    pii_out: list[tuple[str, ...]] = [()] * n
    refused_out: list[str | None] = [None] * n
    if digits is None or long_token is None:
        todo: Sequence[int] = range(n)
    else:
        todo = _worth_a_look(texts, normed, joined, phrase, digits, long_token, pem, literals, at)
    for i in todo:
        text = normed[i]
        plain = text is texts[i]  # unchanged by normalisation: the batch's byte counts hold
        n_digits = digits[i] if plain and digits is not None else _digit_count(text)
        long = long_token[i] if plain and long_token is not None else _has_long_token(text)
        refused = _refusal(
            text,
            n_digits=n_digits,
            phrase=bool(phrase[i]),
            long_token=long,
            pem=pem,
            literals=literals,
        )
        email = at and "@" in text and _EMAIL.search(text) is not None
        phone = n_digits >= 10 and _has_phone(text)
        pii_out[i] = _PII_KINDS[email, phone]
        refused_out[i] = refused
    return pii_out, refused_out


def _worth_a_look(
    texts: Sequence[str],
    normed: Sequence[str],
    joined: str,
    phrase: Sequence[bool],
    digits: Sequence[int],
    long_token: Sequence[bool],
    pem: bool,
    literals: Sequence[tuple[tuple[str, ...], re.Pattern[str]]],
    at: bool,
) -> list[int]:
    """The texts in which some check of the scan can find something, found batch-wide: those with
    at least 10 digits (a phone number; 16 for a hex key), a phrase, a long token, a PEM marker,
    a literal of an API-key pattern or an '@' (one search over the joined batch), or changed by
    normalisation (their batch counts do not hold). Every other text scans as nothing found."""
    need = (np.asarray(digits) >= 10) | np.asarray(phrase, dtype=bool)
    need |= np.asarray(long_token, dtype=bool)
    marks = [lit for lits, _ in literals for lit in lits]
    marks += list(_PEM_LITERALS) * pem + ["@"] * at
    if marks:
        # text i ends (with its separator) at ends[i] in the joined batch
        ends = np.cumsum(np.fromiter(map(len, normed), np.int64, len(normed)) + 1)
        found = [m.start() for m in _marks_pattern(tuple(sorted(set(marks)))).finditer(joined)]
        need[np.searchsorted(ends, np.asarray(found, dtype=np.int64), side="right")] = True
    if normed is not texts:
        need |= np.fromiter((a is not b for a, b in zip(normed, texts, strict=True)), bool)
    return np.flatnonzero(need).tolist()


@lru_cache(maxsize=64)
def _marks_pattern(marks: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, marks)))
