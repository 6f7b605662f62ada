"""The tests' name for ``loadtests.redis_server`` (the benchmark starts one too)."""

from loadtests.redis_server import RedisServer

__all__ = ["RedisServer"]
