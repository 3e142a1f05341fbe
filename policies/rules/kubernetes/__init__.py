"""kubernetes policies (one per module)."""
