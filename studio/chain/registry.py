"""One import for the studio's on-chain operations (the modules behind it hold the details):
Datanets (`datanets_onchain`), models and inference fees (`ledger`), staking and rewards (`staking`)."""

from __future__ import annotations

from .datanets_onchain import ensure_created as create_datanet
from .datanets_onchain import history as datanet_history
from .datanets_onchain import onchain_id as datanet_onchain_id
from .datanets_onchain import publish as publish_datanet
from .ledger import (
    challenge,
    finalize,
    inference,
    pay_for_inference,
    payable_weights,
    payees,
    record_attribution,
    register_model,
    resolve,
    retire_model,
    set_model_price,
    settle_unresolved,
)
from .staking import (
    claim,
    claimable,
    deposit,
    request_unstake,
    status,
    withdraw,
    withdraw_or_request,
)

__all__ = [
    "challenge",
    "claim",
    "claimable",
    "create_datanet",
    "datanet_history",
    "datanet_onchain_id",
    "deposit",
    "finalize",
    "inference",
    "pay_for_inference",
    "payable_weights",
    "payees",
    "publish_datanet",
    "record_attribution",
    "register_model",
    "request_unstake",
    "resolve",
    "retire_model",
    "set_model_price",
    "settle_unresolved",
    "status",
    "withdraw",
    "withdraw_or_request",
]
