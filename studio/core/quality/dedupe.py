"""Near-duplicate lookup over MinHash signatures: LSH banding, then the estimate, then (in the
caller) the exact Jaccard of the two texts."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from studio.core.quality.minhash import _K1, NUM_PERM


@lru_cache(maxsize=8)
def lsh_params(threshold: float) -> tuple[int, int]:
    """(bands, rows) minimising false positives + negatives at this threshold: datasketch's
    choice (lsh._optimal_param, weights 0.5 and 0.5; a test compares the two), computed here
    because datasketch integrates with scipy, which costs ~1 s to import on every add. The
    integrands are polynomials of degree <= NUM_PERM, so Gauss-Legendre quadrature with 40
    nodes integrates them exactly (to rounding), as scipy's quad does."""
    x, w = np.polynomial.legendre.leggauss(40)
    lo = (x + 1) * (threshold / 2)  # the nodes mapped onto [0, threshold] ...
    hi = threshold + (x + 1) * ((1 - threshold) / 2)  # ... and onto [threshold, 1]
    best, opt = float("inf"), (0, 0)
    for b in range(1, NUM_PERM + 1):
        for r in range(1, NUM_PERM // b + 1):
            fp = float(np.dot(w, 1 - (1 - lo**r) ** b)) * (threshold / 2)
            fn = float(np.dot(w, (1 - hi**r) ** b)) * ((1 - threshold) / 2)
            error = fp * 0.5 + fn * 0.5
            if error < best:
                best, opt = error, (b, r)
    return opt


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
        # Every band key of every indexed record with the record id beside each, in two runs
        # sorted by key (within a run, equal keys in id order): the base, and a tail of the
        # latest records, merged into the base once it is an eighth of it. An add writes a file
        # chunk by chunk; merging each chunk into one array copied the whole index every time.
        empty = np.zeros(0, dtype=np.int64)
        self._runs = [(empty, empty), (empty, empty)]  # (base, tail), each (keys, ids)
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
        if collect:
            # Per band key, a record's candidates are the last CAP records before it with that
            # key: in the index (sorted queries keep the binary searches cache-friendly), then
            # earlier in this batch (in a run of equal keys, rows ascend; a record never repeats
            # a key). The same, however the records are split into batches.
            before = self._lookup(sk)
            same = np.flatnonzero(sk[1:] == sk[:-1]) + 1
            first = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            run_start = first[np.searchsorted(first, same, side="right") - 1]
            for p, s in zip(same.tolist(), run_start.tolist(), strict=True):
                here = ids_arr[rows[max(s, p - self.CAP) : p]].tolist()
                before[p] = (before.get(s, []) + here)[-self.CAP :]
            for j, found in before.items():
                cands.setdefault(int(rows[j]), set()).update(found)
        base, tail = self._runs
        tail = _merge_runs(tail, (sk, ids_arr[rows]))
        if 8 * len(tail[0]) >= len(base[0]):
            base, tail = _merge_runs(base, tail), (tail[0][:0], tail[1][:0])
        self._runs = [base, tail]
        self.sigs.update(zip(ids_arr.tolist(), sigs, strict=True))
        out = {}
        for i, near in cands.items():
            ranked = self._rank(near, sigs[i], int(ids_arr[i]))
            if ranked:
                out[int(ids_arr[i])] = ranked
        return out

    def _lookup(self, sk: np.ndarray) -> dict[int, list[int]]:
        """For each position j of the sorted query keys `sk` that the index holds: the ids of
        the last CAP records indexed with that key (the latest, as one sorted array holds them)."""
        found: dict[int, list[int]] = {}
        for keys, ids in self._runs:  # (the base, then the tail: older records first)
            if not len(keys):
                continue
            at = np.searchsorted(keys, sk, side="left")
            hits = np.flatnonzero(keys[np.minimum(at, len(keys) - 1)] == sk)
            if not len(hits):
                continue
            hi = np.searchsorted(keys, sk[hits], side="right")
            for j, lo, h in zip(hits.tolist(), at[hits].tolist(), hi.tolist(), strict=True):
                got = found.setdefault(j, [])
                got += ids[max(lo, h - self.CAP) : h].tolist()
                del got[: -self.CAP]
        return found

    def candidates(
        self, sig: np.ndarray, keys: list[int], exclude: int | None = None
    ) -> list[tuple[int, float]]:
        """Up to 5 (key, estimated Jaccard) worth an exact check, best first."""
        cands: set[int] = set()
        for ids in self._lookup(np.sort(np.asarray(keys, dtype=np.int64))).values():
            cands.update(ids)
        return self._rank(cands, sig, exclude)


def _merge_runs(
    older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs as one: equal keys keep the older run's entries first."""
    if not len(older[0]):
        return newer
    dest = np.searchsorted(older[0], newer[0], side="right") + np.arange(len(newer[0]))
    keys = np.empty(len(older[0]) + len(newer[0]), dtype=np.int64)
    ids = np.empty(len(keys), dtype=np.int64)
    keys[dest], ids[dest] = newer
    rest = np.ones(len(keys), dtype=bool)
    rest[dest] = False
    keys[rest], ids[rest] = older
    return keys, ids
