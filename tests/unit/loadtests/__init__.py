"""Unit tests of loadtests (emulator models, text generation)."""
