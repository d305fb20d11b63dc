"""The L2: wallet, network profiles, devnet, contracts, transaction pipeline. Imports core only."""
