"""OpenLedger Studio: Datanets, ModelFactory and Proof of Attribution on the OpenLedger L2."""

__version__ = "0.1.0"
