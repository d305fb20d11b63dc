"""The OS keyring as an opt-in store for keystore PASSWORDS only (never key material).

Unusable backends are detected, not assumed: keyring's fail backend, null, any plaintext backend,
every keyrings.alt backend (its "encrypted" one prompts on stdin and would hang a GUI), and a chainer
whose backends are all unusable. With none usable, the studio says so and asks for the password."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from studio.core.errors import WalletError

SERVICE = "OpenLedger Studio keystore"


def _name(be: Any) -> str:
    return f"{type(be).__module__}.{type(be).__name__}"


def _unusable_reason(be: Any) -> str | None:
    name = _name(be)
    low = name.lower()
    if low.startswith("keyring.backends.fail") or "fail.keyring" in low:
        return "no OS keyring backend is available"
    if low.startswith("keyring.backends.null"):
        return "the keyring is disabled (null backend)"
    if "plaintext" in low:
        return "plaintext backend refused: it would store the password unencrypted"
    if low.startswith("keyrings.alt"):
        return "keyrings.alt backend refused: plaintext or prompts on stdin"
    if low.startswith("keyring.backends.chainer"):
        subs = list(getattr(be, "backends", []) or [])
        usable = [b for b in subs if _unusable_reason(b) is None]
        if not usable:
            return "no usable OS keyring backend behind the chainer"
    return None


def keyring_status() -> tuple[bool, str]:
    """(usable, detail) for doctor and for the wallet's opt-in."""
    try:
        import keyring

        be = keyring.get_keyring()
    except Exception as e:  # noqa: BLE001 - a broken keyring install is just "unusable"
        return False, f"keyring unavailable: {e}"
    reason = _unusable_reason(be)
    if reason:
        return False, f"{_name(be)}: {reason}"
    return True, _name(be)


def _require_usable() -> Any:
    ok, detail = keyring_status()
    if not ok:
        raise WalletError(
            f"Cannot remember the password: {detail}.",
            hint="Give a password file or type the password when asked.",
        )
    import keyring

    return keyring


def remember_password(address: str, password: str) -> None:
    kr = _require_usable()
    try:
        kr.set_password(SERVICE, to_checksum_address(address), password)
    except Exception as e:  # noqa: BLE001
        raise WalletError(f"The OS keyring refused to store the password: {e}.") from e


def get_password(address: str) -> str | None:
    ok, _ = keyring_status()
    if not ok:
        return None
    import keyring

    try:
        return keyring.get_password(SERVICE, to_checksum_address(address))
    except Exception:  # noqa: BLE001 - a locked/broken keyring: fall through to other sources
        return None


def forget_password(address: str) -> bool:
    ok, _ = keyring_status()
    if not ok:
        return False
    import keyring

    try:
        if keyring.get_password(SERVICE, to_checksum_address(address)) is None:
            return False
        keyring.delete_password(SERVICE, to_checksum_address(address))
        return True
    except Exception:  # noqa: BLE001
        return False
