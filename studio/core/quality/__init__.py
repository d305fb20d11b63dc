"""Record quality: secret and PII scanning (secrets), a validation score in [0, 1] with reasons
(scoring), MinHash signatures (minhash) and exact / near-duplicate lookup (dedupe).

Secrets that would hand over funds or accounts (private keys, recovery phrases, API tokens) make
a record *refused*: it is never stored. E-mail addresses and phone numbers are flagged as PII and
lower the score, so `curate --accept-all --min-score` leaves them for review."""

from studio.core.quality.dedupe import DuplicateIndex, lsh_params
from studio.core.quality.minhash import (
    EMPTY,
    NUM_PERM,
    SCHEME,
    SEED,
    TextStats,
    analyze,
    empty_rows,
    jaccard,
    shingle_hashes,
    signatures,
)
from studio.core.quality.scoring import PENALTY, assess, letter_ratio, unflagged_ok
from studio.core.quality.secrets import (
    Scan,
    bip39_checksum_ok,
    bip39_index,
    bip39_words,
    normalize,
    phrase_flags,
    scan,
    scan_many,
    scan_many_flat,
)

__all__ = [
    "EMPTY",
    "NUM_PERM",
    "PENALTY",
    "SCHEME",
    "SEED",
    "DuplicateIndex",
    "Scan",
    "TextStats",
    "analyze",
    "assess",
    "bip39_checksum_ok",
    "bip39_index",
    "bip39_words",
    "empty_rows",
    "jaccard",
    "letter_ratio",
    "lsh_params",
    "normalize",
    "phrase_flags",
    "scan",
    "scan_many",
    "scan_many_flat",
    "shingle_hashes",
    "signatures",
    "unflagged_ok",
]
