"""Load tests, upstream emulators and benchmarks (may import ``gateway`` and ``policies``)."""
