"""Contribution batches: how a contributor vouches for their records in a snapshot.

A contributor signs one EIP-712 `ContributionBatch` per (Datanet, version, license) over the
keccak256 of their records' content hashes packed in snapshot order; DatanetRegistry recovers the
signer once per batch (see the contract's NatSpec for why this beats one transaction per record).
Each batch carries a multiproof of its records against the snapshot root (`multiproof`), so
only records really in the snapshot under that contributor bind.
These helpers are pure: they build and sign what the contract checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak
from eth_utils import to_checksum_address

DOMAIN_NAME = "OpenLedger DatanetRegistry"
DOMAIN_VERSION = "1"

CONTRIBUTION_TYPES: dict[str, list[dict[str, str]]] = {
    "ContributionBatch": [
        {"name": "datanetId", "type": "uint256"},
        {"name": "version", "type": "uint64"},
        {"name": "contributor", "type": "address"},
        {"name": "licenseHash", "type": "bytes32"},
        {"name": "contentsHash", "type": "bytes32"},
        {"name": "count", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


def license_hash(license: str) -> bytes:
    """keccak256 of the SPDX id in UTF-8, as in the snapshot leaf."""
    return keccak(license.encode("utf-8"))


def contents_hash(content_hashes: Sequence[bytes]) -> bytes:
    """keccak256(abi.encodePacked(bytes32[])) — what the contributor's signature covers."""
    return keccak(b"".join(bytes(h) for h in content_hashes))


def as_bytes32(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        raw = value
    else:
        s = value[2:] if value.startswith(("0x", "0X")) else value
        raw = bytes.fromhex(s)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(registry),
    }


@dataclass(frozen=True)
class ContributionBatch:
    contributor: str
    license_hash: bytes
    deadline: int
    signature: bytes
    content_hashes: tuple[bytes, ...]
    leaf_indices: tuple[int, ...] = ()
    proof: tuple[bytes, ...] = ()

    def with_proof(self, leaves: Sequence[bytes], indices: Sequence[int]) -> ContributionBatch:
        """This batch with its multiproof against the snapshot whose leaves are `leaves`."""
        from dataclasses import replace

        idx = tuple(int(i) for i in indices)
        return replace(self, leaf_indices=idx, proof=tuple(multiproof(leaves, idx)))

    def as_tuple(self) -> tuple[Any, ...]:
        """The Solidity struct (contributor, licenseHash, deadline, signature, contentHashes,
        leafIndices, proof)."""
        return (
            self.contributor,
            self.license_hash,
            self.deadline,
            self.signature,
            list(self.content_hashes),
            list(self.leaf_indices),
            list(self.proof),
        )


def batch_message(
    *,
    datanet_id: int,
    version: int,
    contributor: str,
    license_hash: bytes,
    content_hashes: Sequence[bytes],
    deadline: int,
) -> dict[str, Any]:
    return {
        "datanetId": int(datanet_id),
        "version": int(version),
        "contributor": to_checksum_address(contributor),
        "licenseHash": bytes(license_hash),
        "contentsHash": contents_hash(content_hashes),
        "count": len(content_hashes),
        "deadline": int(deadline),
    }


def sign_batch(
    account: Any,
    *,
    chain_id: int,
    registry: str,
    datanet_id: int,
    version: int,
    license_hash: bytes,
    content_hashes: Sequence[bytes],
    deadline: int,
) -> ContributionBatch:
    """Sign one batch with `account` (an UnlockedAccount, or anything with sign_typed_data)."""
    hashes = tuple(bytes(h) for h in content_hashes)
    msg = batch_message(
        datanet_id=datanet_id,
        version=version,
        contributor=account.address,
        license_hash=license_hash,
        content_hashes=hashes,
        deadline=deadline,
    )
    signed = account.sign_typed_data(domain(chain_id, registry), CONTRIBUTION_TYPES, msg)
    return ContributionBatch(
        to_checksum_address(account.address),
        bytes(license_hash),
        int(deadline),
        bytes(signed.signature),
        hashes,
    )


class KeySigner:
    """A signer from a raw private key (tests, bench, dev accounts) with the UnlockedAccount surface."""

    def __init__(self, private_key: str | bytes) -> None:
        from eth_account import Account

        self._acct = Account.from_key(private_key)
        self.address = str(self._acct.address)

    def sign_typed_data(
        self, domain: dict[str, Any], types: dict[str, Any], message: dict[str, Any]
    ) -> Any:
        return self._acct.sign_typed_data(
            domain_data=domain, message_types=types, message_data=message
        )


def multiproof(leaves: Sequence[bytes], indices: Sequence[int]) -> list[bytes]:
    """The sibling hashes DatanetRegistry's `_verifyMulti` needs to prove `leaves[i]` for every
    i in `indices` (strictly ascending) against the root of `leaves` (studio.core.merkle's tree:
    neighbours paired, an odd last node carried up). Mirrors the contract's walk step by step."""
    from studio.core import merkle

    levels = merkle._levels(leaves)
    known = sorted(set(int(i) for i in indices))
    if list(known) != [int(i) for i in indices]:
        raise ValueError("leaf indices must be strictly ascending")
    proof: list[bytes] = []
    for level in levels[:-1]:
        width = len(level)
        nxt: list[int] = []
        r = 0
        while r < len(known):
            at = known[r]
            if at % 2 == 0:
                if at + 1 < width:
                    if r + 1 < len(known) and known[r + 1] == at + 1:
                        r += 2
                    else:
                        proof.append(level[at + 1])
                        r += 1
                else:
                    r += 1  # carried up
            else:
                proof.append(level[at - 1])
                r += 1
            nxt.append(at // 2)
        known = nxt
    return proof
