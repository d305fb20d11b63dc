"""DatanetRegistry on a real anvil: Datanets, curators, snapshots, fee, contribution binding, proofs."""

from __future__ import annotations

import hashlib

from chain_kit import OPEN, Suite, events, expect_revert, role
from eth_utils import keccak

from studio.chain.contributions import (
    KeySigner,
    as_bytes32,
    contents_hash,
    license_hash,
    sign_batch,
)
from studio.core import merkle

LICENSE = "CC-BY-4.0"


def _content(i: int) -> str:
    return hashlib.sha256(f"record {i}".encode()).hexdigest()


def _create(s: Suite, owner: int = 1) -> int:
    reg = s.datanets
    rcpt = s.node.send(
        reg.functions.createDatanet(keccak(text="meta"), "datanet:demo"), sender=owner
    )
    ev = events(reg, "DatanetCreated", rcpt)[0]
    return int(ev["datanetId"])


def _snapshot(contributors: list[str], n: int) -> tuple[list[str], list[str], bytes]:
    """n records round-robin over contributors; returns content hashes, their contributors, root."""
    contents = [_content(i) for i in range(n)]
    who = [contributors[i % len(contributors)] for i in range(n)]
    leaves = [merkle.leaf_hash(c, w, LICENSE) for c, w in zip(contents, who, strict=True)]
    return contents, who, merkle.merkle_root(leaves)


def _batches(
    s: Suite,
    datanet_id: int,
    version: int,
    contents: list[str],
    who: list[str],
    signers: dict[str, KeySigner],
    *,
    deadline: int | None = None,
) -> list[tuple]:
    deadline = deadline or s.node.now() + 3600
    leaves = [merkle.leaf_hash(c, w, LICENSE) for c, w in zip(contents, who, strict=True)]
    out = []
    for addr, signer in signers.items():
        idx = [i for i, w in enumerate(who) if w == addr]
        mine = [as_bytes32(contents[i]) for i in idx]
        b = sign_batch(
            signer,
            chain_id=s.node.chain_id,
            registry=s.datanets.address,
            datanet_id=datanet_id,
            version=version,
            license_hash=license_hash(LICENSE),
            content_hashes=mine,
            deadline=deadline,
        )
        out.append(b.with_proof(leaves, idx).as_tuple())
    return out


def test_create_curators_and_metadata(suite: Suite) -> None:
    s, reg, acc = suite, suite.datanets, suite.node.accounts
    did = _create(s, owner=1)
    d = reg.functions.getDatanet(did).call()
    assert d[0] == acc[1] and d[2] == "datanet:demo" and d[3] == 0
    expect_revert(
        reg,
        reg.functions.updateMetadata(did, keccak(text="x"), ""),
        "NotDatanetOwner",
        sender=acc[2],
    )
    expect_revert(
        reg, reg.functions.setCurator(did, acc[2], True), "NotDatanetOwner", sender=acc[2]
    )
    expect_revert(reg, reg.functions.getDatanet(99), "UnknownDatanet", sender=acc[0])
    rcpt = s.node.send(reg.functions.setCurator(did, acc[2], True), sender=1)
    assert events(reg, "CuratorSet", rcpt)[0]["enabled"] is True
    assert reg.functions.isCurator(did, acc[2]).call()
    # Two-step transfer: the offer changes nothing until the new owner accepts it.
    s.node.send(reg.functions.transferDatanetOwnership(did, acc[3]), sender=1)
    assert reg.functions.getDatanet(did).call()[0] == acc[1]
    expect_revert(reg, reg.functions.acceptDatanetOwnership(did), "NotPendingOwner", sender=acc[2])
    s.node.send(reg.functions.acceptDatanetOwnership(did), sender=3)
    assert reg.functions.getDatanet(did).call()[0] == acc[3]
    # The old owner's curator does not survive the transfer.
    assert not reg.functions.isCurator(did, acc[2]).call()
    expect_revert(
        reg, reg.functions.transferDatanetOwnership(did, acc[1]), "NotDatanetOwner", sender=acc[1]
    )


def test_publish_snapshot_rules_and_fee(suite: Suite) -> None:
    s, reg, acc = suite, suite.datanets, suite.node.accounts
    fee = s.params["publish_fee"]
    did = _create(s, owner=1)
    contents, who, root = _snapshot([acc[1]], 3)
    man = keccak(text="manifest")
    pub = reg.functions.publishSnapshot(did, 1, root, 3, man, [])
    expect_revert(reg, pub, "WrongFee", sender=acc[1], value=0)
    expect_revert(reg, pub, "NotCurator", sender=acc[2], value=fee)
    expect_revert(
        reg,
        reg.functions.publishSnapshot(did, 1, b"\0" * 32, 3, man, []),
        "ZeroRoot",
        sender=acc[1],
        value=fee,
    )
    expect_revert(
        reg,
        reg.functions.publishSnapshot(did, 1, root, 0, man, []),
        "EmptySnapshot",
        sender=acc[1],
        value=fee,
    )
    rcpt = s.node.send(pub, sender=1, value=fee)
    ev = events(reg, "SnapshotPublished", rcpt)[0]
    assert (ev["version"], ev["root"], ev["recordCount"], ev["manifestHash"], ev["feePaid"]) == (
        1,
        root,
        3,
        man,
        fee,
    )
    expect_revert(reg, pub, "VersionNotNext", sender=acc[1], value=fee)
    # Versions advance by one: no jump (to the last possible version, say).
    for v in (3, 2**64 - 1):
        expect_revert(
            reg,
            reg.functions.publishSnapshot(did, v, root, 3, man, []),
            "VersionNotNext",
            sender=acc[1],
            value=fee,
        )
    # A curator may publish.
    s.node.send(reg.functions.setCurator(did, acc[2], True), sender=1)
    s.node.send(reg.functions.publishSnapshot(did, 2, root, 3, man, []), sender=2, value=fee)
    assert reg.functions.getDatanet(did).call()[3] == 2
    expect_revert(reg, reg.functions.getSnapshot(did, 3), "UnknownSnapshot", sender=acc[0])
    # Fees accrue, then go to the treasury (account 0) — pull, by anyone.
    assert reg.functions.feesAccrued().call() == 2 * fee
    before = s.node.balance(acc[0])
    s.node.send(reg.functions.withdrawFees(), sender=5)
    assert s.node.balance(acc[0]) - before == 2 * fee
    expect_revert(reg, reg.functions.withdrawFees(), "NothingToWithdraw", sender=acc[5])
    # Fee changes are for the fee manager only.
    expect_revert(
        reg, reg.functions.setPublishFee(0), "AccessControlUnauthorizedAccount", sender=acc[1]
    )
    expect_revert(reg, reg.functions.setPublishFee(1_000 * OPEN + 1), "FeeTooHigh", sender=acc[0])
    s.node.send(reg.functions.setPublishFee(0), sender=0)
    s.node.send(reg.functions.publishSnapshot(did, 3, root, 3, man, []), sender=1, value=0)


def test_bind_contributions_with_signatures(suite: Suite) -> None:
    s, reg, acc, keys = suite, suite.datanets, suite.node.accounts, suite.node.keys
    fee = s.params["publish_fee"]
    did = _create(s, owner=1)
    contributors = [acc[2], acc[3], acc[4]]
    contents, who, root = _snapshot(contributors, 10)
    signers = {a: KeySigner(keys[i]) for i, a in zip((2, 3, 4), contributors, strict=True)}
    batches = _batches(s, did, 1, contents, who, signers)
    rcpt = s.node.send(
        reg.functions.publishSnapshot(did, 1, root, 10, keccak(text="m"), batches),
        sender=1,
        value=fee,
    )
    evs = events(reg, "ContributionsBound", rcpt)
    # Events alone rebuild who contributed what.
    rebuilt = {(ev["contributor"], "0x" + h.hex()[-64:]) for ev in evs for h in ev["contentHashes"]}
    assert rebuilt == {(w, "0x" + c) for c, w in zip(contents, who, strict=True)}
    assert reg.functions.contributionCount(did, 1, acc[2]).call() == 4
    assert reg.functions.getSnapshot(did, 1).call()[3] == 10
    # The studio's digest is the contract's digest.
    mine = [as_bytes32(c) for c, w in zip(contents, who, strict=True) if w == acc[3]]
    digest = reg.functions.contributionDigest(
        did, 1, acc[3], license_hash(LICENSE), contents_hash(mine), len(mine), batches[1][2]
    ).call()
    assert len(digest) == 32
    # Replay of the same signed batch is refused.
    expect_revert(
        reg,
        reg.functions.bindContributions(did, 1, [batches[0]]),
        "BatchAlreadyBound",
        sender=acc[1],
    )


def test_bind_failure_paths(suite: Suite) -> None:
    s, reg, acc, keys = suite, suite.datanets, suite.node.accounts, suite.node.keys
    fee = s.params["publish_fee"]
    did = _create(s, owner=1)
    contents, who, root = _snapshot([acc[2]], 3)
    s.node.send(
        reg.functions.publishSnapshot(did, 1, root, 3, keccak(text="m"), []), sender=1, value=fee
    )
    good = _batches(s, did, 1, contents, who, {acc[2]: KeySigner(keys[2])})[0]
    # Signed by someone else than the named contributor.
    forged = _batches(s, did, 1, contents, who, {acc[2]: KeySigner(keys[5])})[0]
    forged = (acc[2], *forged[1:])
    expect_revert(
        reg,
        reg.functions.bindContributions(did, 1, [forged]),
        "BadContributorSignature",
        sender=acc[1],
    )
    # A batch changed after signing (one hash swapped) no longer matches its signature.
    tampered = (*good[:4], [good[4][0], good[4][1], keccak(text="other")], *good[5:])
    expect_revert(
        reg,
        reg.functions.bindContributions(did, 1, [tampered]),
        "BadContributorSignature",
        sender=acc[1],
    )
    # Only the owner or a curator submits batches; the snapshot must exist; not expired; not empty.
    expect_revert(reg, reg.functions.bindContributions(did, 1, [good]), "NotCurator", sender=acc[2])
    expect_revert(
        reg, reg.functions.bindContributions(did, 2, [good]), "UnknownSnapshot", sender=acc[1]
    )
    expired = _batches(
        s, did, 1, contents, who, {acc[2]: KeySigner(keys[2])}, deadline=s.node.now() - 1
    )[0]
    expect_revert(
        reg, reg.functions.bindContributions(did, 1, [expired]), "SignatureExpired", sender=acc[1]
    )
    empty = sign_batch(
        KeySigner(keys[2]),
        chain_id=s.node.chain_id,
        registry=reg.address,
        datanet_id=did,
        version=1,
        license_hash=license_hash(LICENSE),
        content_hashes=[],
        deadline=s.node.now() + 60,
    )
    expect_revert(
        reg,
        reg.functions.bindContributions(did, 1, [empty.as_tuple()]),
        "EmptyBatch",
        sender=acc[1],
    )
    # A record that is not in the snapshot (signed, with a proof from another tree) is refused,
    # and so is an index outside the snapshot.
    other = _batches(s, did, 1, [_content(99), *contents[1:]], who, {acc[2]: KeySigner(keys[2])})[0]
    expect_revert(
        reg, reg.functions.bindContributions(did, 1, [other]), "NotInSnapshot", sender=acc[1]
    )
    extra = _batches(
        s, did, 1, contents + [_content(99)], who + [acc[2]], {acc[2]: KeySigner(keys[2])}
    )[0]
    expect_revert(
        reg, reg.functions.bindContributions(did, 1, [extra]), "BadLeafIndices", sender=acc[1]
    )
    s.node.send(reg.functions.bindContributions(did, 1, [good]), sender=1)


def test_verify_record_against_studio_merkle(suite: Suite) -> None:
    s, reg, acc = suite, suite.datanets, suite.node.accounts
    did = _create(s, owner=1)
    contents, who, root = _snapshot([acc[2], acc[3]], 7)  # odd count: a carried-up node
    s.node.send(
        reg.functions.publishSnapshot(did, 1, root, 7, keccak(text="m"), []),
        sender=1,
        value=s.params["publish_fee"],
    )
    leaves = [merkle.leaf_hash(c, w, LICENSE) for c, w in zip(contents, who, strict=True)]
    lic = license_hash(LICENSE)
    for i in range(7):
        proof = merkle.merkle_proof(leaves, i)
        assert reg.functions.leafHash(as_bytes32(contents[i]), who[i], lic).call() == leaves[i]
        assert reg.functions.verifyRecord(
            did, 1, as_bytes32(contents[i]), who[i], lic, proof
        ).call()
        # Wrong contributor or wrong license: not in the snapshot.
        assert not reg.functions.verifyRecord(
            did, 1, as_bytes32(contents[i]), acc[9], lic, proof
        ).call()
        assert not reg.functions.verifyRecord(
            did, 1, as_bytes32(contents[i]), who[i], keccak(text="MIT"), proof
        ).call()
    assert not reg.functions.verifyRecord(did, 2, as_bytes32(contents[0]), who[0], lic, []).call()


def test_pause_stops_writes(suite: Suite) -> None:
    s, reg, acc = suite, suite.datanets, suite.node.accounts
    expect_revert(reg, reg.functions.pause(), "AccessControlUnauthorizedAccount", sender=acc[1])
    s.node.send(reg.functions.pause(), sender=0)
    expect_revert(
        reg, reg.functions.createDatanet(keccak(text="m"), ""), "EnforcedPause", sender=acc[1]
    )
    s.node.send(reg.functions.unpause(), sender=0)
    _create(s)
    assert reg.functions.hasRole(role("PAUSER_ROLE"), acc[0]).call()
    _ = OPEN
