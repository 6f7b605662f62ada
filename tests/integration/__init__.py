"""Integration tests: real redis-server and emulator processes on loopback."""
