"""Numbered schema migrations. Each module mNNN_name.py defines VERSION = NNN and
upgrade(store), which runs inside one transaction (plain SQL or sqlite-utils schema calls).
Never edit a migration that has shipped; add the next number.

First numbers, one per area: 1 Datanets, 2 chain (deployments, tx journal), 3 ModelFactory,
4 attribution. Later migrations continue the sequence (5, 6, …) whatever their area."""
