"""What every workload shares: how it finds the platform (catalog, Kafka) from its environment."""
