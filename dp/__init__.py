"""`dp`: the one command of the data platform (plan, local, bench, smoke)."""
