"""python -m gateway serve | check-config | keys | teams | spend | cache.

``serve`` validates the config in the parent first (a bad file fails with the path of the
bad field before anything listens), then runs uvicorn with uvloop and httptools. With
``--workers N`` the app is built per worker from ``TOKEN_GATEWAY_CONFIG`` and Prometheus
multiprocess mode is switched on so /metrics totals cover every worker. Each process reloads
the file when it changes (``gateway.reload``); SIGHUP reloads it in a single process, and
under ``--workers N`` makes uvicorn's supervisor replace the workers one by one.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.admin_client import ADMIN_COMMANDS, add_admin_commands, run_admin_command
from gateway.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from gateway.app import HotPaths

CONFIG_ENV = "TOKEN_GATEWAY_CONFIG"
log = logging.getLogger("gateway")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, help="the YAML config file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--log-level", default="warning")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config")
    add_admin_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "check-config":
        return _check(args.config)
    if args.command in ADMIN_COMMANDS:
        return run_admin_command(args)
    return _serve(args)


def _check(path: str) -> int:
    try:
        config = load_config(path)
    except (ConfigError, OSError) as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {len(config.deployments)} deployments, {len(config.aliases)} aliases")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and not config.accounting.redis_url:
        print(
            "invalid config: --workers > 1 needs accounting.redis_url: the embedded store "
            "lives in one process, so each worker would keep its own keys, budgets and spend",
            file=sys.stderr,
        )
        return 2
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    _describe(config, args)
    multiproc_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiproc_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    try:
        uvicorn.run(
            "gateway.cli:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=args.log_level,
            timeout_graceful_shutdown=30,
            timeout_keep_alive=config.server.keep_alive_s,
        )
    finally:
        if multiproc_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)
    return 0


def app_from_env() -> HotPaths:
    """uvicorn factory: the app for the config file named in ``TOKEN_GATEWAY_CONFIG``."""
    from gateway.app import create_app

    path = os.environ[CONFIG_ENV]
    return create_app(load_config(path), path)


def _describe(config: Config, args: argparse.Namespace) -> None:
    local = sum(1 for d in config.deployments.values() if d.local)
    log.info(
        "token-gateway on http://%s:%d: %d aliases, %d deployments (%d local), %d worker(s)",
        args.host,
        args.port,
        len(config.aliases),
        len(config.deployments),
        local,
        args.workers,
    )
    if not config.accounting.redis_url:
        log.warning("no Redis configured: keys, budgets and spend live in this process only")
