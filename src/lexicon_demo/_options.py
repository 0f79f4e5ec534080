"""The demo's command line, and where its calls go.

The embedded emulator is the default whatever the environment holds: a key in
``OPENAI_API_KEY`` is common in a shell and must not turn a demo into a bill.
Real calls happen only when the user names an endpoint: ``--base-url URL``, or
``--real`` for the one in ``OPENAI_BASE_URL`` (else OpenAI's). ``--provider``
sends some stages (``mixed``) or all of them (``anthropic``) to Claude; the
emulator serves Anthropic's API too, and a real run then also needs
``ANTHROPIC_API_KEY`` (and ``ANTHROPIC_BASE_URL`` or ``--anthropic-base-url`` for
another server than Anthropic's).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Literal, NoReturn

import attrs

RunnerName = Literal["immediate", "batch"]
RUNNER_CHOICES: Final = ("immediate", "batch", "both")
ProviderName = Literal["openai", "anthropic", "mixed"]
PROVIDER_CHOICES: Final = ("openai", "anthropic", "mixed")
DEFAULT_CLAUDE_MODEL: Final = "claude-haiku-4-5"
ANTHROPIC_URL: Final = "https://api.anthropic.com"
DEFAULT_WORDS: Final = 12
SAMPLE_WORDS: Final = 300
"""Words in the shipped sample (checked against the data set when it is loaded)."""
DEFAULT_MODEL: Final = "gpt-4o-mini"
OPENAI_URL: Final = "https://api.openai.com/v1"
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
"""128 + SIGINT, what a shell reports for a command ended by Ctrl-C."""


class UsageError(Exception):
    """A mistake in the command line or the environment: one line, exit status 2."""


class RunFailed(Exception):
    """The run could not go on (an API call outside any request failed): one line, status 1."""


@attrs.define
class StoreInUse:
    """Which store the run writes to, for the message after an interruption."""

    path: Path | None = None
    temporary: bool = True


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the fix, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


@attrs.frozen
class Endpoint:
    """Where the demo's calls go.

    Attributes:
        base_url: the API's base URL, or None for the embedded emulator (its URL
            is known once it has started).
        api_key: the key sent (never printed).
        real: True when the calls may be billed: anything but the embedded emulator.
        anthropic_base_url: Anthropic's API for the stages on Claude (None: the
            embedded emulator's, or no stage on Claude).
        anthropic_key: the key sent to it (never printed).
    """

    base_url: str | None
    api_key: str
    real: bool
    anthropic_base_url: str | None = None
    anthropic_key: str = "demo"


@attrs.frozen
class Options:
    """The demo's settings, checked."""

    words: int
    runners: tuple[RunnerName, ...]
    endpoint: Endpoint
    model: str
    provider: ProviderName
    claude_model: str
    store: str | None
    seed: int
    show: int
    time_scale: float
    yes: bool
    key_in_environment: bool


def build_parser() -> argparse.ArgumentParser:
    """The ``inert demo`` command line; ``--help`` explains every option."""
    parser = OneLineParser(
        prog="inert demo",
        description=(
            "Synthesize dictionary entries for sample words with one pipeline, run now "
            "(immediate runner) and through the Batch API (batch runner), then run again "
            "on the same store to show every answer served from it. Calls go to the "
            "embedded emulator (local, free) unless you name a real endpoint with "
            "--base-url or --real; a real run says how many calls it will make and what "
            "they may cost, and asks first."
        ),
    )
    parser.add_argument(
        "--words",
        type=int,
        default=DEFAULT_WORDS,
        metavar="N",
        help=f"how many sample words to synthesize, 1 to {SAMPLE_WORDS} (default {DEFAULT_WORDS})",
    )
    parser.add_argument(
        "--runner",
        choices=RUNNER_CHOICES,
        default="both",
        help="run the pipeline with the immediate runner, the batch runner, or both "
        "(default both; with both, the immediate run keeps no store so that each "
        "runner pays its own way, and the batch run fills the store)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="call this OpenAI-compatible API instead of the embedded emulator, with "
        "the key in OPENAI_API_KEY (real calls: the demo asks before sending)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="call the API named by OPENAI_BASE_URL (default OpenAI's) with the key "
        "in OPENAI_API_KEY, instead of the embedded emulator (the demo asks first)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="with --base-url or --real: send without asking for confirmation",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"the chat model every request names (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default="openai",
        help="where the stages go: all to GPT (openai, the default), all to Claude "
        "(anthropic), or mixed: the word facts, definitions, examples and usage notes on "
        "Claude and the rest on GPT, so a round asks both and the batch runner sends one "
        "batch job per provider per round",
    )
    parser.add_argument(
        "--claude-model",
        default=DEFAULT_CLAUDE_MODEL,
        help=f"the Claude model the stages on Claude name (default {DEFAULT_CLAUDE_MODEL})",
    )
    parser.add_argument(
        "--anthropic-base-url",
        metavar="URL",
        help="with --base-url or --real and a provider other than openai: call this "
        "Anthropic API (default ANTHROPIC_BASE_URL, else Anthropic's) with the key in "
        "ANTHROPIC_API_KEY",
    )
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite store file that keeps every answer (default: a fresh file in a "
        "temporary directory, removed afterwards); run the demo twice with the same "
        "PATH and the second run is served entirely from it",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="chooses which sample words are used (default 0); the same seed gives "
        "the same words and, on the emulator, the same answers",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=2,
        metavar="K",
        help="how many entries to print (default 2)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.2,
        metavar="X",
        help="emulator only: how long a batch takes, about 1.1 * X seconds (default 0.2)",
    )
    return parser


def parse(argv: Sequence[str] | None, *, environ: Mapping[str, str] | None = None) -> Options:
    """The checked options; a bad option exits with one line and status 2.

    ``--words`` beyond the sample's size is refused once the sample is loaded.

    Raises:
        UsageError: the environment lacks what the options need (a key).
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    env = os.environ if environ is None else environ
    if args.words < 1:
        parser.error(f"--words must be between 1 and {SAMPLE_WORDS}; got {args.words}")
    if args.show < 0:
        parser.error(f"--show must not be negative; got {args.show}")
    if args.time_scale <= 0:
        parser.error(f"--time-scale must be positive; got {args.time_scale}")
    runners: tuple[RunnerName, ...] = (
        ("immediate", "batch") if args.runner == "both" else (args.runner,)
    )
    return Options(
        words=args.words,
        runners=runners,
        endpoint=_endpoint(args, env),
        model=args.model,
        provider=args.provider,
        claude_model=args.claude_model,
        store=args.store,
        seed=args.seed,
        show=args.show,
        time_scale=args.time_scale,
        yes=args.yes,
        key_in_environment=bool(env.get("OPENAI_API_KEY")),
    )


def _endpoint(args: argparse.Namespace, env: Mapping[str, str]) -> Endpoint:
    if args.base_url is None and not args.real:
        return Endpoint(base_url=None, api_key="demo", real=False)
    flag = "--base-url" if args.base_url is not None else "--real"
    key = env.get("OPENAI_API_KEY", "")
    if not key:
        raise UsageError(
            f"{flag} calls a real endpoint with the key in OPENAI_API_KEY, which is not "
            "set; set it (any value for a server that checks none), or drop "
            f"{flag} to use the embedded emulator"
        )
    base_url = args.base_url or env.get("OPENAI_BASE_URL") or OPENAI_URL
    if args.provider == "openai":
        return Endpoint(base_url=base_url, api_key=key, real=True)
    claude_key = env.get("ANTHROPIC_API_KEY", "")
    if not claude_key:
        raise UsageError(
            f"{flag} with --provider {args.provider} calls Anthropic with the key in "
            "ANTHROPIC_API_KEY, which is not set; set it, or use --provider openai, or "
            f"drop {flag} to use the embedded emulator"
        )
    claude_url = args.anthropic_base_url or env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL
    return Endpoint(
        base_url=base_url,
        api_key=key,
        real=True,
        anthropic_base_url=claude_url,
        anthropic_key=claude_key,
    )
