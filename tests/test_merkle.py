"""The snapshot Merkle tree against an independent computation (eth-abi + eth-utils keccak),
shaped the way OpenZeppelin's MerkleProof.verify checks it."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core import merkle
from studio.core.errors import InvalidInput

WHO = [
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
]


def independent_leaf(content: bytes, contributor: str, license: str) -> bytes:
    inner = keccak(
        encode(
            ["bytes32", "address", "bytes32"],
            [hashlib.sha256(content).digest(), contributor, keccak(text=license)],
        )
    )
    return keccak(inner)


def independent_root(leaves: list[bytes]) -> bytes:
    level = leaves
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 == len(level):
                nxt.append(level[i])
            else:
                a, b = sorted((level[i], level[i + 1]))
                nxt.append(keccak(a + b))
        level = nxt
    return level[0]


def oz_verify(proof: list[bytes], root: bytes, leaf: bytes) -> bool:
    """OpenZeppelin MerkleProof.processProof with Hashes.commutativeKeccak256."""
    computed = leaf
    for p in proof:
        computed = keccak(computed + p) if computed < p else keccak(p + computed)
    return computed == root


def _leaves(n: int) -> list[bytes]:
    return [
        merkle.leaf_hash(
            hashlib.sha256(f"record {i}".encode()).hexdigest(), WHO[i % 3], "CC-BY-4.0"
        )
        for i in range(n)
    ]


def test_leaf_matches_abi_encoding() -> None:
    content = b"The Hollow Bell rock went under at 04:12."
    ours = merkle.leaf_hash(hashlib.sha256(content).hexdigest(), WHO[0].lower(), "CC-BY-4.0")
    assert ours == independent_leaf(content, WHO[0], "CC-BY-4.0")
    assert ours != independent_leaf(content, WHO[0], "CC0-1.0")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 13])
def test_root_and_every_proof(n: int) -> None:
    leaves = _leaves(n)
    root = merkle.merkle_root(leaves)
    assert root == independent_root(leaves)
    if n == 1:
        assert root == leaves[0]
    for i, leaf in enumerate(leaves):
        proof = merkle.merkle_proof(leaves, i)
        assert oz_verify(proof, root, leaf)
        assert merkle.verify_proof(leaf, proof, root)
    assert not merkle.verify_proof(keccak(b"stranger"), merkle.merkle_proof(leaves, 0), root)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_any_tree_proves_any_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle.merkle_root(leaves)
    assert root == independent_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    assert oz_verify(merkle.merkle_proof(leaves, i), root, leaves[i])


def test_empty_tree_and_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput):
        merkle.merkle_root([])
    with pytest.raises(InvalidInput):
        merkle.leaf_hash("abcd", WHO[0], "MIT")
    with pytest.raises(InvalidInput):
        merkle.merkle_proof(_leaves(2), 5)
