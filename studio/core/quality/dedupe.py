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
