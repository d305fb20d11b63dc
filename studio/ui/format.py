"""Small display helpers shared by the pages (no web3 import: OPEN amounts formatted here)."""

from __future__ import annotations

from decimal import Decimal

WEI = 10**18


def open_amount(wei: int | None, places: int = 4) -> str:
    if wei is None:
        return "—"
    q = Decimal(int(wei)) / Decimal(WEI)
    text = f"{q:,.{places}f}".rstrip("0").rstrip(".")
    return f"{text} OPEN"


def short_hash(h: str | None, n: int = 10) -> str:
    if not h:
        return "—"
    return h if len(h) <= n + 4 else f"{h[:n]}…{h[-4:]}"
