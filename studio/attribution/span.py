"""Span method: which records contain pieces of the output verbatim (infini-gram / OLMoTrace style).

The tokenised snapshot is one array (records separated by a token no text produces), stored as
big-endian uint16/uint32 bytes so that a byte-wise suffix array (libdivsufsort via pydivsufsort)
sorts suffixes in token order; only suffixes that start on a token boundary are kept. A query
finds, for every start position of the output, the longest prefix found in the corpus (binary
search over the suffix array; each step compares bytes, i.e. memcmp), keeps the *maximal* spans
(not inside a longer match) of at least ``min_len`` tokens, and weights each span by

    weight(span) = sum over its tokens of -log p_unigram(token)       (length x rarity, in nats)

shared equally by its occurrences (a span found in 3 places gives each a third), capped at
``max_occurrences`` places (the first ones in suffix-array order, which is deterministic). A
record's span score is the sum of the shares of the spans it contains.
"""

from __future__ import annotations

import bisect
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import replace_dir, write_json
from studio.core.errors import AttributionError

FORMAT = "openledger.span-index/1"


@dataclass(frozen=True)
class SpanConfig:
    min_len: int = 8  # tokens; byte-level tokenizers want more (see default_min_len)
    max_occurrences: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return {"min_len": self.min_len, "max_occurrences": self.max_occurrences}


def default_min_len(vocab_size: int) -> int:
    # A byte-level token carries ~1 character; a BPE token ~4. Aim for ~24 characters either way.
    return 24 if vocab_size <= 512 else 6


class _Suffixes:
    """The suffix array seen as a sorted sequence of byte prefixes of length m (for bisect)."""

    def __init__(self, corpus: bytes, sa: np.ndarray, m: int) -> None:
        self.corpus, self.sa, self.m = corpus, sa, m

    def __len__(self) -> int:
        return len(self.sa)

    def __getitem__(self, i: int) -> bytes:
        o = int(self.sa[i])
        return self.corpus[o : o + self.m]


@dataclass
class SpanMatch:
    start: int  # in output tokens
    end: int
    count: int  # occurrences in the corpus
    weight: float
    records: list[int] = field(
        default_factory=list
    )  # row number of each occurrence (sorted, repeats)


@dataclass
class SpanIndex:
    path: Path | None
    meta: dict[str, Any]
    records: list[dict[str, Any]]
    tokens: np.ndarray  # big-endian token array (with separators)
    sa: np.ndarray  # byte offsets of token-aligned suffixes, in suffix order
    starts: np.ndarray  # token offset where each record starts
    logp: np.ndarray  # -log unigram probability per token id (float64), smoothed

    @property
    def width(self) -> int:
        return int(self.tokens.dtype.itemsize)

    @classmethod
    def build(
        cls,
        docs: Sequence[Sequence[int]],
        records: Sequence[dict[str, Any]],
        vocab_size: int,
        identity: dict[str, Any] | None = None,
    ) -> SpanIndex:
        from pydivsufsort import divsufsort

        if not docs:
            raise AttributionError(
                "No records to index.", hint="Check the model's Datanet snapshots."
            )
        dtype = np.dtype(">u2") if vocab_size < 0xFFFF else np.dtype(">u4")
        sep = np.iinfo(dtype.newbyteorder("=")).max
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        starts = np.zeros(len(docs), dtype=np.int64)
        starts[1:] = np.cumsum(lengths + 1)[:-1]
        total = int(lengths.sum() + len(docs))
        toks = np.full(total, sep, dtype=dtype)
        for s, d in zip(starts, docs, strict=True):
            toks[s : s + len(d)] = np.asarray(d, dtype=np.int64)
        raw = toks.view(np.uint8)
        sa = divsufsort(raw)
        sa = sa[sa % dtype.itemsize == 0]
        sa = sa.astype(np.int64 if raw.size > np.iinfo(np.int32).max else np.int32)
        counts = np.bincount(
            np.concatenate([np.asarray(d, dtype=np.int64) for d in docs if len(d)]),
            minlength=vocab_size,
        ).astype(np.float64)
        logp = -np.log((counts + 1.0) / (counts.sum() + vocab_size))
        meta = {
            "format": FORMAT,
            "identity": identity or {},
            "n": len(docs),
            "tokens": int(lengths.sum()),
            "dtype": dtype.str,
            "vocab_size": vocab_size,
        }
        return cls(None, meta, list(records), toks, sa, starts, logp)

    def save(self, out: Path) -> None:
        out = Path(out)
        building = out.with_name(out.name + ".building")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        np.save(building / "tokens.npy", self.tokens)
        np.save(building / "sa.npy", self.sa)
        np.save(building / "starts.npy", self.starts)
        np.save(building / "logp.npy", self.logp)
        write_json(building / "records.json", self.records)
        write_json(building / "meta.json", self.meta)
        replace_dir(building, out)
        self.path = out

    @classmethod
    def open(cls, path: Path) -> SpanIndex:
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
            records = json.loads((path / "records.json").read_text())
            toks = np.load(path / "tokens.npy", mmap_mode="r")
            sa = np.load(path / "sa.npy", mmap_mode="r")
            starts = np.load(path / "starts.npy")
            logp = np.load(path / "logp.npy")
        except (OSError, ValueError) as e:
            raise AttributionError(
                f"The span index at {path} is unreadable ({e}).",
                hint="Rebuild it: studio attribution index MODEL.",
            ) from e
        if meta.get("format") != FORMAT:
            raise AttributionError(
                f"The span index at {path} is from another version.",
                hint="Rebuild it: studio attribution index MODEL.",
            )
        return cls(path, meta, records, toks, sa, starts, logp)

    # -- queries ---------------------------------------------------------------------------

    def _pattern(self, toks: Sequence[int]) -> bytes:
        return np.asarray(toks, dtype=np.int64).astype(self.tokens.dtype).tobytes()

    def _range(self, corpus: bytes, pat: bytes) -> tuple[int, int]:
        seq = _Suffixes(corpus, self.sa, len(pat))
        lo = bisect.bisect_left(seq, pat)
        hi = bisect.bisect_right(seq, pat, lo=lo)
        return lo, hi

    def count(self, toks: Sequence[int]) -> int:
        corpus = self._corpus()
        lo, hi = self._range(corpus, self._pattern(toks))
        return hi - lo

    def _corpus(self) -> bytes:
        c = getattr(self, "_corpus_bytes", None)
        if c is None:
            c = np.ascontiguousarray(self.tokens).tobytes()
            self._corpus_bytes = c
        return c

    def find_spans(self, output: Sequence[int], cfg: SpanConfig) -> list[SpanMatch]:
        """Maximal spans of `output` found in the corpus, with at least cfg.min_len tokens."""
        corpus = self._corpus()
        vocab = len(self.logp)
        out = [int(t) for t in output]
        if any(t < 0 or t >= vocab for t in out):
            out = [t if 0 <= t < vocab else -1 for t in out]
        n = len(out)
        lengths = [0] * n
        prev = 0
        for i in range(n):
            length = max(prev - 1, 0)  # a match at i-1 of length L implies one at i of length L-1
            while i + length < n and out[i + length] >= 0:
                lo, hi = self._range(corpus, self._pattern(out[i : i + length + 1]))
                if hi <= lo:
                    break
                length += 1
            lengths[i] = length
            prev = length
        spans: list[SpanMatch] = []
        reach = 0
        for i in range(n):
            end = i + lengths[i]
            if lengths[i] >= cfg.min_len and end > reach:
                lo, hi = self._range(corpus, self._pattern(out[i:end]))
                count = hi - lo
                offs = np.sort(
                    np.asarray(self.sa[lo : min(hi, lo + cfg.max_occurrences)], dtype=np.int64)
                )
                rows = sorted(
                    bisect.bisect_right(self.starts, int(o) // self.width) - 1 for o in offs
                )
                weight = float(sum(float(self.logp[t]) for t in out[i:end]))
                spans.append(SpanMatch(i, end, count, weight, rows))
            reach = max(reach, end)
        return spans

    def record_scores(self, spans: Sequence[SpanMatch], cfg: SpanConfig) -> dict[int, float]:
        scores: dict[int, float] = {}
        for sp in spans:
            places = min(sp.count, cfg.max_occurrences)
            if places == 0:
                continue
            # Shares per occurrence; a record holding the span twice gets two shares.
            share = sp.weight / places
            for r in sp.records:
                scores[r] = scores.get(r, 0.0) + share
        return scores


def spans_to_text(
    spans: Sequence[SpanMatch], output_ids: Sequence[int], decode: Any
) -> list[dict[str, Any]]:
    return [
        {
            "start": s.start,
            "end": s.end,
            "text": decode(list(output_ids[s.start : s.end])),
            "count": s.count,
            "weight": round(s.weight, 6),
        }
        for s in spans
    ]


def nats(x: float) -> float:
    return float(f"{x:.6g}") if math.isfinite(x) else 0.0
