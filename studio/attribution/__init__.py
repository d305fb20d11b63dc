"""Proof of Attribution: gradient and span methods, reports, verification. Imports core and train."""
