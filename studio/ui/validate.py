"""Checks forms run as the user types; each returns a plain message or None. No web3 import."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

ADDRESS_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


def address_problem(text: str) -> str | None:
    if not ADDRESS_RE.match(text):
        return "An address is 0x followed by 40 hex characters."
    from studio.core.address import checksum_address
    from studio.core.errors import InvalidInput

    try:
        checksum_address(text)
    except InvalidInput:
        return "The EIP-55 checksum (the mixed case) is wrong: copy the address again."
    return None


def amount_problem(text: str) -> str | None:
    try:
        v = Decimal(text)
    except InvalidOperation:
        return "The amount is a number of OPEN, such as 1.5."
    if v <= 0:
        return "The amount must be above 0."
    if v.as_tuple().exponent < -18:  # type: ignore[operator]
        return "OPEN has 18 decimals at most."
    return None
