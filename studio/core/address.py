"""Ethereum addresses outside the chain layer: EIP-55 parsing without importing web3."""

from __future__ import annotations

import re

from studio.core.errors import InvalidInput

_ADDRESS_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


def _eip55(body_lower: str) -> str:
    from eth_hash.auto import keccak  # eth_utils would cost ~0.3 s of imports per command

    digest = keccak(body_lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(body_lower, digest, strict=False)
    )


def checksum_address(address: str) -> str:
    """Validate an Ethereum address (EIP-55 checksum when mixed case); return it checksummed."""
    a = (address or "").strip()
    if not _ADDRESS_RE.match(a):
        raise InvalidInput(
            f"'{address}' is not an Ethereum address.", hint="Use 0x followed by 40 hex characters."
        )
    body = a[2:]
    good = _eip55(body.lower())
    if body != body.lower() and body != body.upper() and "0x" + body != good:
        raise InvalidInput(
            f"'{address}' has a wrong EIP-55 checksum (mixed case that does not match).",
            hint="Copy the address again, or write it all in lower case.",
        )
    return good
