"""``python -m loadtests.bench <subcommand>``: the benchmarks.

overhead   direct vs the floor proxy vs the gateway, in one run (see overhead.py)
decision   one routing decision over 10 candidates vs the per-request overhead (decision.py)
"""

from __future__ import annotations

import argparse

from loadtests.bench import decision, overhead


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen benchmark; its exit code."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench")
    commands = parser.add_subparsers(dest="command", required=True)
    overhead.add_arguments(
        commands.add_parser("overhead", help="gateway overhead vs a bare proxy, in one run")
    )
    decision.add_arguments(commands.add_parser("decision", help="one routing decision, timed"))
    args = parser.parse_args(argv)
    return decision.run(args) if args.command == "decision" else overhead.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
