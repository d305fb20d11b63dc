"""Who signs a Datanet's contributions on publish: the contributors of its accepted records whose
accounts this wallet holds, unlocked (the publisher's own account included)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.chain.wallet import UnlockedAccount, Wallet
    from studio.core.store import Store


@dataclass
class ContributorSigners:
    signers: dict[str, Any] = field(default_factory=dict)  # address -> unlocked account
    locked: dict[str, str] = field(default_factory=dict)  # held but could not be unlocked: why


def accepted_contributors(store: Store, name: str) -> set[str]:
    """Every contributor (EIP-55) with an accepted record in the Datanet."""
    rows = store.query(
        "SELECT DISTINCT r.contributor FROM records r JOIN datanets d ON d.id = r.datanet_id"
        " WHERE d.name = ? AND r.status = 'accepted'",
        (name,),
    )
    return {to_checksum_address(r["contributor"]) for r in rows}


def contributor_signers(
    wallet: Wallet, store: Store, name: str, publisher: UnlockedAccount
) -> ContributorSigners:
    """One locked contributor must not stop the publish: their records stay unbound for now."""
    wanted = accepted_contributors(store, name)
    held = {to_checksum_address(i.address) for i in wallet.list()}
    out = ContributorSigners({to_checksum_address(publisher.address): publisher})
    for address in sorted(wanted & held):
        if address in out.signers:
            continue
        try:
            out.signers[address] = wallet.unlock(address)
        except StudioError as e:
            out.locked[address] = str(e)
            wallet.events.emit(
                _warning(
                    f"cannot unlock contributor {address} ({e}); their records stay unbound for now"
                )
            )
    return out


def _warning(text: str) -> Any:
    from studio.core.events import Event

    return Event("warning", job="publish", message=f"warning: {text}")
