"""The core: no Qt, no web3. Paths, config, store, blobs, Datanets, jobs and events."""
