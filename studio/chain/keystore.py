"""Keystore v3 files (eth-account), scrypt stated explicitly, written atomically with mode 0600.

One file per account: <home>/keystores/<ChecksumAddress>.json. Besides the standard v3 fields a file
carries an `x-studio` object (label, created_at, source) that other wallets ignore. Nothing here ever
writes key material in the clear."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import is_hex_address, to_checksum_address

from studio.core import atomic
from studio.core.errors import AlreadyExists, WalletError, WrongPassword

# eth-account's default scrypt work factor (n = 2**18, r = 8, p = 1: about 256 MiB and ~1 s).
# Tests lower it through this attribute; files record their own parameters, so decrypting never
# depends on it.
SCRYPT_N = 2**18
SCRYPT_R = 8
SCRYPT_P = 1
META_KEY = "x-studio"
# Refused before decrypting: an untrusted keystore could ask for gigabytes and minutes of work.
MAX_SCRYPT_BYTES = 1 << 30  # 128·n·r·p ≤ 1 GiB (ours: 256 MiB)
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_P = 16
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_DKLEN = 64


def keystore_path(folder: Path, address: str) -> Path:
    return Path(folder) / f"{to_checksum_address(address)}.json"


def encrypt(private_key: bytes, password: str, **meta: Any) -> dict[str, Any]:
    doc: dict[str, Any] = dict(
        Account.encrypt(private_key, password, kdf="scrypt", iterations=SCRYPT_N)
    )
    doc[META_KEY] = {"created_at": time.time(), **{k: v for k, v in meta.items() if v is not None}}
    return doc


def validate(doc: Any, *, source: str = "keystore") -> str:
    """Structure check before any decryption; returns the checksum address the file claims."""
    if not isinstance(doc, dict):
        raise WalletError(f"The {source} is not a keystore (expected a JSON object).")
    if doc.get("version") != 3:
        raise WalletError(
            f"The {source} is not a version 3 keystore.",
            hint="Export it again from your wallet as a v3 (geth / MetaMask) keystore JSON.",
        )
    crypto = doc.get("crypto") or doc.get("Crypto")
    if not isinstance(crypto, dict) or not all(
        k in crypto for k in ("cipher", "ciphertext", "kdf", "kdfparams", "mac")
    ):
        raise WalletError(f"The {source} is damaged: its crypto section is incomplete.")
    if crypto.get("kdf") not in ("scrypt", "pbkdf2"):
        raise WalletError(f"The {source} uses an unknown key derivation {crypto.get('kdf')!r}.")
    addr = str(doc.get("address") or "")
    addr = addr if addr.startswith("0x") else "0x" + addr
    if not is_hex_address(addr):
        raise WalletError(f"The {source} has no valid address field.")
    return to_checksum_address(addr)


def _int(params: dict[str, Any], name: str) -> int:
    try:
        v = int(params.get(name, 0))
    except (TypeError, ValueError):
        v = -1
    return v


def check_cost(doc: dict[str, Any], *, source: str = "keystore") -> None:
    """Refuse key-derivation parameters that would take absurd memory or time, before any work."""
    crypto = doc.get("crypto") or doc.get("Crypto") or {}
    params = crypto.get("kdfparams") or {}
    if not isinstance(params, dict):
        raise WalletError(f"The {source} is damaged: its kdfparams are not an object.")
    dklen = _int(params, "dklen")
    if not 32 <= dklen <= MAX_DKLEN:
        raise WalletError(f"The {source} asks for a derived key of {dklen} bytes; refusing it.")
    if crypto.get("kdf") == "scrypt":
        n, r, p = _int(params, "n"), _int(params, "r"), _int(params, "p")
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            raise WalletError(f"The {source} has invalid scrypt parameters (n={n}, r={r}, p={p}).")
        if n > MAX_SCRYPT_N or p > MAX_SCRYPT_P or 128 * n * r * p > MAX_SCRYPT_BYTES:
            raise WalletError(
                f"The {source} asks for scrypt n={n}, r={r}, p={p} (about "
                f"{128 * n * r * p >> 20} MiB of work); refusing to open it.",
                hint="A keystore from a real wallet never needs that much: do not trust this file.",
            )
    else:
        c = _int(params, "c")
        if not 1 <= c <= MAX_PBKDF2_ITERATIONS:
            raise WalletError(
                f"The {source} asks for {c} pbkdf2 iterations; refusing to open it.",
                hint="A keystore from a real wallet never needs that much: do not trust this file.",
            )


def weaker_than_ours(doc: dict[str, Any]) -> bool:
    """pbkdf2, or scrypt with n, r or p below ours: re-encrypted when the studio next can."""
    crypto = doc.get("crypto") or doc.get("Crypto") or {}
    if crypto.get("kdf") != "scrypt":
        return True
    params = crypto.get("kdfparams") or {}
    return (
        _int(params, "n") < SCRYPT_N or _int(params, "r") < SCRYPT_R or _int(params, "p") < SCRYPT_P
    )


def decrypt(doc: dict[str, Any], password: str, *, source: str = "keystore") -> bytes:
    """The private key; WalletError for a wrong password, a damaged file, an address mismatch,
    or key-derivation parameters that ask for too much work (refused before any)."""
    claimed = validate(doc, source=source)
    check_cost(doc, source=source)
    try:
        key = bytes(Account.decrypt(doc, password))
    except ValueError as e:
        if "MAC mismatch" in str(e):
            # The MAC cannot tell a wrong password from a damaged ciphertext.
            raise WrongPassword(
                f"Wrong password or damaged file for {claimed}.",
                hint="Try again with the right password; if it still fails, restore the "
                "keystore from a backup.",
            ) from e
        raise WalletError(f"The {source} for {claimed} cannot be decrypted: it is damaged.") from e
    except Exception as e:  # noqa: BLE001 - any decoding failure means a damaged file
        raise WalletError(
            f"The {source} for {claimed} cannot be decrypted: it is damaged ({type(e).__name__})."
        ) from e
    actual = Account.from_key(key).address
    if actual != claimed:
        raise WalletError(
            f"The {source} says it holds {claimed} but its key belongs to {actual}; it was altered.",
            hint="Do not use this file; import the account again from its original backup.",
        )
    return key


def read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError as e:
        raise WalletError(f"No keystore file at {path}.") from e
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise WalletError(
            f"The keystore {path} is not readable JSON: it is damaged.",
            hint="Restore it from a backup or import the account again.",
        ) from e
    claimed = validate(doc, source=f"keystore {Path(path).name}")
    # The file name is the wallet's index: a file holding another account (copied over, or
    # swapped) would otherwise be unlocked, exported and signed with under the wrong address.
    stem = Path(path).stem
    if is_hex_address(stem) and to_checksum_address(stem) != claimed:
        raise WalletError(
            f"The keystore {path} holds the account {claimed}, not {to_checksum_address(stem)}: "
            "it was replaced or altered.",
            hint="Restore the file from a backup, or remove it and import the account again.",
        )
    return doc


def write(folder: Path, doc: dict[str, Any], *, overwrite: bool = False) -> Path:
    address = validate(doc)
    path = keystore_path(folder, address)
    if path.exists() and not overwrite:
        raise AlreadyExists(f"The account {address} is already in this wallet.")
    atomic.write_json(path, doc, mode=0o600)
    return path


def kdf_of(doc: dict[str, Any]) -> str:
    return str((doc.get("crypto") or doc.get("Crypto") or {}).get("kdf", "?"))


def scrypt_n(doc: dict[str, Any]) -> int:
    """The scrypt work factor a keystore was written with (0 when it is not scrypt)."""
    crypto = doc.get("crypto") or doc.get("Crypto") or {}
    if crypto.get("kdf") != "scrypt":
        return 0
    try:
        return int((crypto.get("kdfparams") or {}).get("n", 0))
    except (TypeError, ValueError):
        return 0
