"""aws policies (one per module)."""
