"""Unit tests of gateway/upstreams/."""
