"""Run an upstream emulator: ``python -m loadtests.emulate {vllm,openai,anthropic} --port P``.

Prints ``ready http://HOST:PORT`` on stdout once it serves, binds 127.0.0.1 unless told
otherwise, and runs until SIGTERM/SIGINT (or until ``--die-after`` requests). What each
emulator emulates and what calibrates it: the docstrings of ``loadtests/emulators/``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from loadtests.emulators import textgen
from loadtests.emulators.asgi import Router, serve
from loadtests.emulators.faults import FaultKnobs


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate must be within 0..1, got {text}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every delay by this factor (tests use e.g. 0.01)",
    )
    parser.add_argument("--zero-latency", action="store_true", help="no delays at all")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--fail-rate",
        type=_rate,
        default=0.0,
        help="fraction of requests answered 500 before any byte",
    )
    parser.add_argument(
        "--hang-rate",
        type=_rate,
        default=0.0,
        help="fraction of requests never answered (until the client gives up)",
    )
    parser.add_argument(
        "--die-after", type=int, default=None, help="exit after answering this many requests"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=textgen.DEFAULT_TRACE,
        help="Azure LLM trace CSV whose GeneratedTokens give output lengths",
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        default=None,
        help="append one JSON line per request answered (X-Request-Id, model, tokens, status)",
    )


def _paid(parser: argparse.ArgumentParser, models: str) -> None:
    parser.add_argument("--models", default=models, help="comma-separated served models")
    parser.add_argument(
        "--rate-limit-rate",
        type=_rate,
        default=0.0,
        help="fraction of requests answered 429 with Retry-After",
    )
    parser.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        help="fraction of requests answered with a provider server error",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.emulate", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    vllm = sub.add_parser("vllm", help="a Qwen2.5-7B-Instruct GPU worker behind vLLM")
    _common(vllm)
    vllm.add_argument("--model", default="Qwen/Qwen2.5-7B-Instruct", help="served model name")
    vllm.add_argument("--gpu", choices=("h100", "a100"), default="h100")
    vllm.add_argument(
        "--max-num-seqs",
        type=int,
        default=None,
        help="running-sequence cap (default: 1024 on h100, 256 on a100)",
    )
    vllm.add_argument("--max-model-len", type=int, default=32768)
    openai = sub.add_parser("openai", help="the paid OpenAI API")
    _common(openai)
    _paid(openai, "gpt-4o-mini,gpt-4o,gpt-4.1-mini,text-embedding-3-small")
    anthropic = sub.add_parser("anthropic", help="the paid Anthropic Messages API")
    _common(anthropic)
    _paid(anthropic, "claude-haiku-4-5,claude-sonnet-4-5")
    return parser


def build_app(args: argparse.Namespace) -> Router:
    """The emulator the arguments ask for (imports only that one)."""
    faults = FaultKnobs(args.fail_rate, args.hang_rate, args.die_after)
    if args.kind == "vllm":
        from loadtests.emulators.vllm_worker import WorkerConfig
        from loadtests.emulators.vllm_worker import build_app as vllm_app

        return vllm_app(
            WorkerConfig(
                model=args.model,
                gpu=args.gpu,
                max_num_seqs=args.max_num_seqs,
                max_model_len=args.max_model_len,
                time_scale=args.time_scale,
                zero_latency=args.zero_latency,
                seed=args.seed,
                trace=args.trace,
                faults=faults,
                request_log=args.request_log,
            )
        )
    from loadtests.emulators.paid import PaidConfig

    config = PaidConfig(
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        time_scale=args.time_scale,
        zero_latency=args.zero_latency,
        seed=args.seed,
        trace=args.trace,
        faults=faults,
        rate_limit_rate=args.rate_limit_rate,
        error_rate=args.error_rate,
        request_log=args.request_log,
    )
    if args.kind == "openai":
        from loadtests.emulators.openai_api import build_app as openai_app

        return openai_app(config)
    from loadtests.emulators.anthropic_api import build_app as anthropic_app

    return anthropic_app(config)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve until stopped."""
    args = build_parser().parse_args(argv)
    serve(build_app(args), args.host, args.port)


if __name__ == "__main__":
    main()
