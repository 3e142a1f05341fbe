"""compose policies (one per module)."""
