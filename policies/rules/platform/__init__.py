"""platform policies (one per module)."""
