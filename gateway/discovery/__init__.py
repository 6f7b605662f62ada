"""Per-pod discovery: deployments whose members are the addresses a DNS name resolves to."""
