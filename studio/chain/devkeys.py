"""The devnet's dev accounts: the well-known test mnemonic's first keys (public, devnet only).

A leaf module (it imports only the wallet's UnlockedAccount), so the contracts, the client and the
devnet can all use the dev accounts without importing one another."""

from __future__ import annotations

from functools import cache

from studio.core.errors import ChainError

from .wallet import UnlockedAccount

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10


@cache
def _dev_key(index: int) -> bytes:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(acct.key)


def dev_address(index: int) -> str:
    from eth_account import Account

    return str(Account.from_key(_dev_key(index)).address)


def dev_accounts() -> list[str]:
    return [dev_address(i) for i in range(DEV_ACCOUNTS)]


def dev_account(index: int = 0) -> UnlockedAccount:
    """An unlocked signer for devnet account `index` (public dev key; devnet only, never locks)."""

    if not 0 <= index < DEV_ACCOUNTS:
        raise ChainError(
            f"There are {DEV_ACCOUNTS} dev accounts (0–{DEV_ACCOUNTS - 1}); {index} is not one."
        )
    return UnlockedAccount(_dev_key(index), timeout_s=None, label=f"dev{index}")


def dev_private_key(index: int) -> str:
    """Hex key of dev account `index` (a published test key), e.g. to import it into a demo wallet."""
    return "0x" + _dev_key(index).hex()
