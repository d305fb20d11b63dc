"""The secret scanner against a hold-out style table of disguises (throwaway keys and phrases
generated here, never real ones), and against ordinary text that must still pass."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from studio.core import quality
from studio.core.config import IngestConfig
from studio.core.ingest import read_records

REPO = Path(__file__).resolve().parents[1]
NBSP = "\u00a0"


def throwaway_secrets(seed: str = "studio disguise table") -> dict[str, str]:
    """A phrase (12 and 24 words) and its private key, derived from fixed entropy with eth-account,
    and API tokens of the right shapes from a seeded generator: deterministic and worthless."""
    from eth_account import Account
    from eth_account.hdaccount.mnemonic import Mnemonic

    Account.enable_unaudited_hdwallet_features()
    entropy = hashlib.sha256(seed.encode()).digest()
    phrase = Mnemonic().to_mnemonic(entropy[:16])
    phrase24 = Mnemonic().to_mnemonic(entropy)
    key = Account.from_mnemonic(phrase).key.hex().removeprefix("0x")
    rng = random.Random(seed)

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    up, low, dig = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789"
    b64 = up + low + dig + "+/"
    return {
        "phrase": phrase,
        "phrase24": phrase24,
        "key": key,
        "akia": "AKIA" + pick(up + dig, 16),
        "asia": "ASIA" + pick(up + dig, 16),
        "aws_secret": pick(b64, 18) + "/" + pick(b64, 8) + "7" + pick(b64, 12),
        "gh": pick(up + low + dig, 36),
        "pat": pick(up + low + dig + "_", 59),
        "sk": pick(up + low + dig, 48),
        "hf": pick(up + low, 34),
        "slack": "-".join([pick(dig, 12), pick(dig, 12), pick(low + dig, 24)]),
        "stripe": pick(up + low + dig, 24),
        "aiza": pick(up + low + dig + "_-", 35),
        "pem": pick(b64, 64),
    }


def disguises() -> list[tuple[str, str]]:
    s = throwaway_secrets()
    w = s["phrase"].split()
    k = s["key"]
    jwt_head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    jwt_body = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"Ann"}').decode().rstrip("=")
    return [
        # recovery phrases
        ("phrase plain", f"my seed words are {s['phrase']} ok"),
        ("phrase trailing period", f"Backup: {s['phrase']}."),
        ("phrase double quotes", f'recovery = "{s["phrase"]}"'),
        ("phrase single quotes", f"phrase='{s['phrase']}'"),
        ("phrase comma-separated", ", ".join(w)),
        ("phrase commas, no spaces", ",".join(w)),
        ("phrase numbered 1.", " ".join(f"{i}. {x}" for i, x in enumerate(w, 1))),
        ("phrase numbered 1)", " ".join(f"{i}) {x}" for i, x in enumerate(w, 1))),
        ("phrase numbered lines", "\n".join(f"{i}. {x}" for i, x in enumerate(w, 1))),
        ("phrase hyphen-joined", "-".join(w)),
        ("phrase JSON array", json.dumps(w)),
        ("phrase no-break spaces", NBSP.join(w)),
        ("phrase ideographic spaces", "\u3000".join(w)),
        ("phrase zero-width joiners", " ".join(x[:2] + "\u200d" + x[2:] for x in w)),
        ("phrase upper case", s["phrase"].upper()),
        ("phrase title case", s["phrase"].title()),
        ("phrase one per line", "\n".join(w)),
        ("phrase tab-separated", "\t".join(w)),
        ("phrase markdown list", "\n".join(f"- {x}" for x in w)),
        ("phrase underscores", "_".join(w)),
        ("phrase slashes", " / ".join(w)),
        ("phrase 24 words", f"wallet: {s['phrase24']}"),
        ("phrase base64", base64.b64encode(s["phrase"].encode()).decode()),
        # private keys
        ("key 0x", f"my wallet key is 0x{k}"),
        ("key bare", f"backup: {k}"),
        ("key upper case", f"KEY=0X{k.upper()}"),
        ("key split over two lines", f"key:\n0x{k[:32]}\n{k[32:]}"),
        ("key split over three lines", f"key:\n  {k[:22]}\n  {k[22:44]}\n  {k[44:]}"),
        ("key grouped in fours", " ".join(k[i : i + 4] for i in range(0, 64, 4))),
        ("key grouped with no-break spaces", NBSP.join(k[i : i + 8] for i in range(0, 64, 8))),
        ("key colon bytes", ":".join(k[i : i + 2] for i in range(0, 64, 2))),
        ("key base64 bytes", f"key: {base64.b64encode(bytes.fromhex(k)).decode()}"),
        ("key base64 of hex", base64.b64encode(("0x" + k).encode()).decode()),
        ("key after a hash word", f"key for the block producer: 0x{k}"),
        ("key in JSON", json.dumps({"privateKey": "0x" + k})),
        ("key zero-width inside", f"0x{k[:20]}\u200b{k[20:]}"),
        ("key full-width", "".join(chr(ord(c) + 0xFEE0) for c in "0x" + k)),
        # API tokens
        ("AWS AKIA id", f"aws {s['akia']} here"),
        ("AWS ASIA id", f"temporary id {s['asia']}"),
        ("AWS secret key, labelled", f"aws_secret_access_key = {s['aws_secret']}"),
        ("AWS secret key, bare", f"then paste {s['aws_secret']} into the form"),
        ("GitHub ghp_", f"token ghp_{s['gh']}"),
        ("GitHub gho_", f"gho_{s['gh']}"),
        ("GitHub ghs_", f"GH_TOKEN=ghs_{s['gh']}"),
        ("GitHub ghu_", f"(ghu_{s['gh']})"),
        ("GitHub fine-grained", f"github_pat_{s['pat']}"),
        ("OpenAI sk-proj-", f"export OPENAI_API_KEY=sk-proj-{s['sk']}"),
        ("Slack bot token", f"xoxb-{s['slack']}"),
        ("Stripe live key", f"sk_live_{s['stripe']}"),
        ("Hugging Face", f"HF_TOKEN=hf_{s['hf']}"),
        ("Google API key", f"key=AIza{s['aiza']}"),
        ("JWT", f"Authorization: Bearer {jwt_head}.{jwt_body}.{s['gh'][:30]}"),
        ("password in a URL", "postgres://admin:Tr0ub4dor3@db.example.com:5432/app"),
        ("PEM RSA", f"-----BEGIN RSA PRIVATE KEY-----\n{s['pem']}\n"),
        ("PEM OpenSSH", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{s['pem']}\n"),
        ("PEM PKCS8", f"-----BEGIN PRIVATE KEY-----\n{s['pem']}\n"),
        ("PGP private key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF..."),
    ]


DISGUISES = disguises()


@pytest.mark.parametrize("name,text", DISGUISES, ids=[n for n, _ in DISGUISES])
def test_every_disguise_is_refused(name: str, text: str) -> None:
    s = quality.scan(text)
    assert s.refused, f"{name} got through"
    # the batched path ingest uses agrees, wherever the text sits in a batch
    stats = quality.analyze(["an ordinary line", text, "another one"])
    _, why = quality.scan_many_flat(
        ["an ordinary line", text, "another one"],
        stats.mnemonic.tolist(),
        stats.digits.tolist(),
        stats.long_token.tolist(),
    )
    assert why[0] is None and why[1] and why[2] is None


def test_the_table_is_made_of_generated_secrets() -> None:
    s = throwaway_secrets()
    assert quality.bip39_checksum_ok(s["phrase"].split())
    assert quality.bip39_checksum_ok(s["phrase24"].split())
    assert re.fullmatch("[0-9a-f]{64}", s["key"])
    assert throwaway_secrets("another seed")["key"] != s["key"]
    assert len(DISGUISES) >= 42


HASH = hashlib.sha256(b"a record").hexdigest()
ORDINARY = [
    f"sha256: {HASH}",
    f"SHA-256 = {HASH}",
    f"tx hash: 0x{HASH}",
    f"the tx hash was 0x{HASH}",
    f'{{"blockHash": "0x{HASH}", "number": 12}}',
    f"Merkle root 0x{HASH} for version 3",
    f"digest `{HASH}`",
    f"commit {HASH[:40]} fixed the bug",
    f"git sha {HASH[:40]}",
    "send it to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 and 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "550e8400-e29b-41d4-a716-446655440000\n6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "abandon ability able about above absent absorb abstract absurd abuse access accident",
    "In 1987 the keeper counted 33 steps and 114 stairs; in 2019, 2020 and 2021 the count was 115.",
    "12 45 2020 3 17 99 1024 2048 4096 8192 16384 32768 65536 131072 262144 524288 1048576",
    "a bad cafe faced a dead bee; add a decade of fed fees",
    "see https://example.com/docs/reference/configuration/advanced/options?page=2",
    "/usr/local/lib/python3.11/site-packages/numpy/core/multiarray.py",
    base64.b64encode(b"this is a long plain sentence, only base64-encoded for transport").decode(),
    "00 1f 3a 4b 5c 6d 7e 8f 90 a1 b2 c3 d4 e5 f6 07",
    "ThisIsAVeryLongIdentifierNameWithNumber1 appears in the source",
    "The word list starts: abandon, ability, able, about, above, absent, absorb, abstract, absurd.",
    "Call me at noon; my e-mail is on the card.",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_and_labelled_hashes_pass(text: str) -> None:
    assert quality.scan(text).refused is None


def test_the_batched_scan_finds_what_the_scan_of_each_text_finds() -> None:
    """scan_many_flat with analyze()'s counts looks closely only at the texts where something can
    be found: it must give, text for text, what scanning each text on its own gives."""
    rng = random.Random(3)
    texts = (
        [t for _, t in DISGUISES]
        + ORDINARY
        + [
            "Write to keeper@example.org about the lamp.",
            "Call +44 20 7946 0958 after six.",
            "Ünïcode\u00a0spaces and a key sk-" + "a" * 30,
            "no-break\u00a0space " + throwaway_secrets()["phrase"].replace(" ", "\u00a0"),
            "the keeper counted 1 2 3 4 5 6 7 8 9 10 gulls",
        ]
    )
    rng.shuffle(texts)
    stats = quality.analyze(texts)
    pii, why = quality.scan_many_flat(
        texts, stats.mnemonic.tolist(), stats.digits.tolist(), stats.long_token.tolist()
    )
    each = [quality.scan(t) for t in texts]
    assert why == [s.refused for s in each]
    assert [list(p) for p in pii] == [s.pii for s in each]
    assert sum(1 for w in why if w) >= 42 and sum(1 for p in pii if p) >= 2


def test_the_sample_datanet_passes_whole() -> None:
    cfg = IngestConfig()
    folder = REPO / "resources" / "sample-datanet"
    texts = []
    for p in sorted(folder.iterdir()):
        if p.suffix in (".md", ".txt", ".jsonl", ".csv"):
            texts += [r.plain_text() for r in read_records(p, p.read_bytes(), cfg)]
    assert len(texts) > 20
    stats = quality.analyze(texts)
    _, why = quality.scan_many_flat(
        texts, stats.mnemonic.tolist(), stats.digits.tolist(), stats.long_token.tolist()
    )
    assert [t[:60] for t, w in zip(texts, why, strict=True) if w] == []


def test_phrase_tokens_are_the_letter_runs_of_the_normalised_text() -> None:
    """The vectorised tokeniser equals the plain definition: runs of a-z in normalize(t).lower()."""
    rng = random.Random(5)
    words = sorted(quality.bip39_words())
    pieces = [*words[:50], "1.", "2)", ",", '"', "-", NBSP, "\u200b", "\u3000", "Ünïcode", "x" * 9]
    texts = [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(60)]
    from studio.core.quality.secrets import phrase_tokens

    owner, index, _ = phrase_tokens(texts)
    bip = quality.bip39_index()
    for i, t in enumerate(texts):
        expected = [bip.get(w, -1) for w in re.findall("[a-z]+", quality.normalize(t).lower())]
        assert index[owner == i].tolist() == expected
