"""What the rules read out of resources, shared across rules: compose projects inside commands, pod specs inside
Kubernetes workloads, AWS configuration resources attached to their target, Kafka settings on every target."""
