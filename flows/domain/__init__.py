"""The domain: typed values and the rules on them (no I/O, no store, nothing of Relais imported)."""
