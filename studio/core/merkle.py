"""Merkle tree over a snapshot's records, the way OpenZeppelin's `MerkleProof.verify` checks it.

leaf  = keccak256(keccak256(abi.encode(bytes32 contentHash, address contributor, bytes32 keccak256(license))))
node  = keccak256(sorted(left, right))   (commutative pair hashing, so proofs need no left/right bits)
Levels are built by pairing neighbours; an odd last node is carried up unchanged. One leaf: root = leaf.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_hash.auto import keccak

from studio.core.errors import InvalidInput


def _hex_bytes(value: str, size: int, what: str) -> bytes:
    s = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        raw = bytes.fromhex(s)
    except ValueError as e:
        raise InvalidInput(f"{what} {value!r} is not hex.") from e
    if len(raw) != size:
        raise InvalidInput(f"{what} {value!r} must be {size} bytes.")
    return raw


def leaf_hash(content_sha256_hex: str, contributor: str, license: str) -> bytes:
    content = _hex_bytes(content_sha256_hex, 32, "Content hash")
    address = _hex_bytes(contributor, 20, "Contributor address")
    encoded = content + b"\x00" * 12 + address + keccak(license.encode("utf-8"))
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise InvalidInput(
            "A Merkle tree needs at least one leaf.", hint="Accept some records first."
        )
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [hash_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    if not 0 <= index < len(leaves):
        raise InvalidInput(f"Leaf index {index} is outside 0..{len(leaves) - 1}.")
    proof: list[bytes] = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    h = leaf
    for sibling in proof:
        h = hash_pair(h, sibling)
    return h == root


def to_hex(b: bytes) -> str:
    return "0x" + b.hex()


def from_hex(s: str) -> bytes:
    return _hex_bytes(s, 32, "Hash")
