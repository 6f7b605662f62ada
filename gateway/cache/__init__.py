"""The response cache: exact-match lookups in Redis (or in process), single-flight, replay."""
