"""vm policies (one per module)."""
