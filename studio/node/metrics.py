"""Prometheus metrics of one node (its own registry, so two nodes in one process never mix)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class NodeMetrics:
    def __init__(self, node: Any) -> None:
        self.node = node
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "studio_node_requests",
            "API requests by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "studio_node_request_seconds",
            "Completion latency (to the last byte)",
            ["endpoint"],
            registry=r,
        )
        self.tokens = Counter("studio_node_completion_tokens", "Tokens generated", registry=r)
        self.recorded = Counter(
            "studio_node_attributions_recorded",
            "Attributions recorded on chain by this node",
            registry=r,
        )
        self.validations = Counter(
            "studio_node_validations",
            "Other nodes' attributions re-run, by verdict",
            ["verdict"],
            registry=r,
        )
        self.reruns = Counter(
            "studio_node_validation_reruns",
            "Reports re-run by this validator, by the attribution method used",
            ["method"],
            registry=r,
        )
        self.challenges = Counter(
            "studio_node_challenges", "Challenges raised by this validator", registry=r
        )
        self.head = Gauge("studio_node_chain_head", "Latest block the RPC reports", registry=r)
        self.verified = Gauge(
            "studio_node_verified_block", "Latest block verified and indexed", registry=r
        )
        self.lies = Gauge(
            "studio_node_rpc_lies", "Answers of the RPC that failed verification", registry=r
        )
        self.reorgs = Gauge("studio_node_reorgs", "Reorgs rolled back", registry=r)
        self.subscribed = Gauge(
            "studio_node_heads_subscribed",
            "1 while new heads come by websocket subscription, 0 while polling",
            registry=r,
        )
        self.queue = Gauge("studio_node_queue", "Requests waiting for the model worker", registry=r)

    def render(self) -> bytes:
        f = getattr(self.node, "follower", None)
        if f is not None:
            st = f.status()
            if st.get("head") is not None:
                self.head.set(st["head"])
            if st.get("verified_to") is not None:
                self.verified.set(st["verified_to"])
            self.lies.set(st["lies"])
            self.reorgs.set(st["reorgs"])
            self.subscribed.set(1 if st.get("mode") == "subscription" else 0)
        w = getattr(self.node, "worker", None)
        self.queue.set(w.queued if w is not None else 0)
        return bytes(generate_latest(self.registry))
