"""Imported once by the ingest pool's fork server (core.ingest_plan): loads and warms what
every worker needs (numpy, datasketch's permutations, the BIP-39 table, the compiled patterns),
so each worker forked from it starts ready instead of paying for that itself."""

from studio.core import ingest_plan, quality

quality.analyze(["warm up the MinHash permutations and the recovery-phrase table"])
quality.scan("warm up the secret scan: sk-... 0x... user@example.org +44 20 7946 0000")

__all__ = ["ingest_plan"]
