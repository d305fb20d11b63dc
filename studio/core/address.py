"""Ethereum addresses outside the chain layer: EIP-55 parsing without importing web3."""

from __future__ import annotations

import re
from typing import Any

from studio.core.errors import InvalidInput

_ADDRESS_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


def _eip55(body_lower: str) -> str:
    from eth_hash.auto import keccak  # eth_utils would cost ~0.3 s of imports per command

    digest = keccak(body_lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(body_lower, digest, strict=False)
    )


def checksum_address(address: Any, *, noun: str = "Ethereum address") -> str:
    """Validate a user-typed Ethereum address; return it checksummed. Mixed case must carry a valid
    EIP-55 checksum: it exists to catch a mistyped character before OPEN goes to a stranger.
    The one parser for every layer (the chain's parse_address is this with noun="address")."""
    a = address.strip() if isinstance(address, str) else ""
    if not _ADDRESS_RE.match(a):
        raise InvalidInput(
            f"'{address}' is not an {noun}.", hint="Use 0x followed by 40 hex characters."
        )
    body = a[2:]
    good = _eip55(body.lower())
    if body != body.lower() and body != body.upper() and "0x" + body != good:
        raise InvalidInput(
            f"'{address}' has a wrong EIP-55 checksum (mixed case that does not match).",
            hint="Copy the address again, or write it all in lower case.",
        )
    return good
