"""The ``inert`` command: ``batches`` (the journal), ``store``, ``emulator`` and ``demo``.

``inert batches list|show ID|cancel [ID]|resume`` work on a store's batch journal,
whichever provider's batch API holds each batch: the journal's shard says it (its
endpoint), so ``show``, ``cancel`` and ``resume`` reach OpenAI's Batch API through
``openai.AsyncOpenAI`` and Anthropic's Message Batches through
``anthropic.AsyncAnthropic``, each only when a batch of that provider is
concerned. The SDKs read ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` and
``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` from the environment; ``--base-url``
and ``--anthropic-base-url`` point them at another server such as the emulator, and
``--provider`` limits a command to one provider's batches. The keys are never
printed nor stored.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from inert import _cli_store
from inert._store_errors import StoreError

if TYPE_CHECKING:
    import anthropic
    import openai

    from inert._providers import Provider
    from inert._store import ShardRecord, Store

# The SDK (and the emulator, and rich) are imported by the commands that use them,
# so that `inert --help` and `inert batches list` start without loading them; the
# store (and sqlite3) by the commands that open one, so that `inert --help` does not.

_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command ended by Ctrl-C."""


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _client(args: argparse.Namespace) -> openai.AsyncOpenAI:
    """The OpenAI client for ``show``/``cancel``/``resume``, from flags and the environment."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise _UsageError(
            "set OPENAI_API_KEY to reach the API (for the emulator any value works, "
            "e.g. OPENAI_API_KEY=test inert batches ... --base-url http://127.0.0.1:8321/v1)"
        )
    import openai

    return openai.AsyncOpenAI(base_url=args.base_url)


def _anthropic_client(args: argparse.Namespace) -> anthropic.AsyncAnthropic:
    """The Anthropic client for the journal's Message Batches, from flags and the environment."""
    _need_anthropic_key()
    import anthropic

    return anthropic.AsyncAnthropic(base_url=args.anthropic_base_url)


def _need_anthropic_key() -> None:
    """Raise the usage error that names the variable to set, unless a key is set."""
    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise _UsageError(
            "set ANTHROPIC_API_KEY to reach Anthropic's Message Batches (for the emulator any "
            "value works, e.g. ANTHROPIC_API_KEY=test inert batches ... --anthropic-base-url "
            "http://127.0.0.1:8321/anthropic), or leave its batches out with --provider openai"
        )


class _Clients:
    """The clients of the providers a command concerns, made on entry and closed on exit."""

    def __init__(self, args: argparse.Namespace, providers: set[Provider]) -> None:
        if "anthropic" in providers:
            _need_anthropic_key()  # before any client is made, so none is left open
        self.openai = _client(args) if "openai" in providers else None
        self.anthropic = _anthropic_client(args) if "anthropic" in providers else None

    async def __aenter__(self) -> _Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.openai is not None:
            await self.openai.close()
        if self.anthropic is not None:
            await self.anthropic.close()


def _provider(record: ShardRecord) -> Provider:
    from inert._providers import provider_of

    return provider_of(record.endpoint)


def _providers_of(records: Sequence[ShardRecord], args: argparse.Namespace) -> set[Provider]:
    """The providers whose clients a command needs for ``records`` (limited by ``--provider``).

    With none of them, the one ``--provider`` names, else OpenAI's: a command that
    talks to an API checks its key even when it finds nothing to do, so a missing
    key shows the first time, not the first time there is work.
    """
    chosen: Provider | None = getattr(args, "provider", None)
    found: set[Provider] = {p for p in map(_provider, records) if chosen is None or p == chosen}
    fallback: Provider = "openai" if chosen is None else chosen
    return found or {fallback}


class _UsageError(Exception):
    """A mistake in the command line or the environment; printed without a traceback."""


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the way out, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    import importlib.metadata  # here: reading the metadata is slow, and only --version needs it

    try:
        return importlib.metadata.version("inert")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "unknown"


class _Version(argparse.Action):
    """``--version``, which reads the installed version only when it is asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"inert {_version()}")
        parser.exit()


def _add_common(parser: argparse.ArgumentParser, *, repeated: bool) -> None:
    """``--store`` and ``--base-url``, accepted before the action and after it.

    The action's copy has no default of its own (``SUPPRESS``), so a value given
    before the action is not overwritten by an absent one after it.
    """
    default = argparse.SUPPRESS if repeated else None
    parser.add_argument(
        "--store",
        default=default,
        help="the store: a file, or a postgresql:// URL (default: .inert/store.sqlite3 in the "
        "current directory)",
    )
    parser.add_argument(
        "--base-url", default=default, help="API base URL (default: OPENAI_BASE_URL or OpenAI)"
    )
    parser.add_argument(
        "--anthropic-base-url",
        default=default,
        help="Anthropic API base URL (default: ANTHROPIC_BASE_URL or Anthropic)",
    )


# --- inert batches ------------------------------------------------------------------------


def _print_table(records: Sequence[ShardRecord], now: float) -> None:
    header = (
        "ROW", "RUN", "SHARD", "TRY", "API", "STATE", "REMOTE", "BATCH", "LINES", "DONE", "FAILED",
        "HELD BY",
    )  # fmt: skip
    rows = [
        (
            str(r.id),
            r.run_id,
            str(r.shard),
            str(r.attempt),
            _provider(r),
            r.state,
            r.remote_status or "-",
            r.batch_id or "-",
            str(r.size),
            str(r.completed),
            str(r.failed),
            _holder(r, now),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _holder(record: ShardRecord, now: float) -> str:
    """The run holding a shard's lease now, or ``-`` (nobody: the next run may take it)."""
    return record.owner if record.owner is not None and record.leased(now) else "-"


def _batches_list(args: argparse.Namespace, store: Store) -> int:
    from inert._store import PENDING_STATES

    records = store.shards(run_id=args.run)
    if args.provider is not None:
        records = [r for r in records if _provider(r) == args.provider]
    if args.pending:
        records = [r for r in records if r.state in PENDING_STATES]
    if not records:
        print(f"no batches in the journal of {store.location}")
        return 0
    _print_table(records, store.clock())
    return 0


async def _batches_show(args: argparse.Namespace, store: Store) -> int:
    record = store.find_shard(args.id)
    if record is None:
        raise _UsageError(
            f"no batch {args.id!r} in the journal of {store.location}; "
            "`inert batches list` shows the batch ids and row numbers"
        )
    from inert._providers import NAMES

    provider = _provider(record)
    fields = [
        ("batch", record.batch_id or "(not created)"),
        ("provider", NAMES[provider]),
        ("journal row", str(record.id)),
        ("run", record.run_id),
        ("shard", str(record.shard)),
        ("attempt", str(record.attempt)),
        ("state", record.state),
        ("endpoint", record.endpoint),
        ("model", record.model or "-"),
        ("lines", str(record.size)),
        ("input file", record.input_file_id or "-"),
        ("output file", record.output_file_id or "-"),
        ("error file", record.error_file_id or "-"),
        ("journaled status", record.remote_status or "-"),
        ("completed / failed", f"{record.completed} / {record.failed}"),
        ("created", _when(record.created_at)),
        ("updated", _when(record.updated_at)),
        (
            "held by",
            f"{record.owner} (lease until {_when(record.lease_expires_at)})"
            if record.owner is not None and record.lease_expires_at is not None
            else "nobody (a run that needs its lines takes it over)",
        ),
    ]
    if record.error:
        fields.append(("error", record.error))
    anomalies = store.anomalies(record.id)
    if anomalies:
        fields.append(("anomalies", str(len(anomalies))))
    if args.remote and record.batch_id is not None:
        if provider == "anthropic":
            async with _anthropic_client(args) as claude:
                message_batch = await claude.messages.batches.retrieve(record.batch_id)
            tally = message_batch.request_counts
            fields.append(("remote status", message_batch.processing_status))
            fields.append(
                (
                    "remote counts",
                    f"{tally.succeeded} succeeded, {tally.errored} errored, {tally.canceled} "
                    f"canceled, {tally.expired} expired, {tally.processing} processing",
                )
            )
        else:
            async with _client(args) as client:
                batch = await client.batches.retrieve(record.batch_id)
            counts = batch.request_counts
            fields.append(("remote status", batch.status))
            if counts is not None:
                fields.append(
                    (
                        "remote counts",
                        f"{counts.completed} completed, {counts.failed} failed, "
                        f"{counts.total} total",
                    )
                )
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")
    return 0


def _pending(store: Store, args: argparse.Namespace) -> list[ShardRecord]:
    """The journal's shards not yet collected (of ``--run``, ``--provider`` when given)."""
    from inert._store import ATTACHED_STATES, UNSENT_STATES

    records = store.shards(run_id=args.run, states=(*UNSENT_STATES, *ATTACHED_STATES))
    chosen = getattr(args, "provider", None)
    return [r for r in records if chosen is None or _provider(r) == chosen]


async def _batches_cancel(args: argparse.Namespace, store: Store) -> int:
    from inert._runners._batch import BatchJournal

    record = None if args.id is None else store.find_shard(args.id)
    if args.id is not None and record is None:
        raise _UsageError(f"no batch {args.id!r} in the journal of {store.location}")
    if record is not None and record.batch_id is None:
        raise _UsageError(f"journal row {record.id} has no batch id; nothing to cancel")
    providers: set[Provider] = (
        {_provider(record)} if record is not None else _providers_of(_pending(store, args), args)
    )
    async with _Clients(args, providers) as clients:
        journal = BatchJournal(clients.openai, store, anthropic=clients.anthropic)
        if record is None:
            cancelled = await journal.cancel(run_ids=None if args.run is None else [args.run])
        else:
            assert record.batch_id is not None
            cancelled = await journal.cancel(batch_ids=[record.batch_id])
    for batch_id in cancelled:
        print(f"cancelling {batch_id}")
    if not cancelled:
        print("no unfinished batch to cancel")
    return 0


async def _batches_resume(args: argparse.Namespace, store: Store) -> int:
    from inert._runners._batch import BatchJournal, ProgressView, is_success
    from inert._store import LOST_STATE

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    providers = _providers_of(_pending(store, args), args)
    async with _Clients(args, providers) as clients:
        journal = BatchJournal(
            clients.openai,
            store,
            anthropic=clients.anthropic,
            poll_interval=args.poll_interval,
            poll_interval_max=60.0,
        )
        with ProgressView(progress) as view:
            collected = await journal.resume(run_id=args.run, view=view)
    for item in collected:
        answered = sum(1 for line in item.lines.values() if is_success(line))
        print(f"{item.batch_id}: {item.status}, {answered} answers stored")
        if item.status == "lost":
            print(
                f"  its output expired before it was downloaded: run the same requests again "
                f"to resubmit the unanswered lines, or `inert batches abandon {item.batch_id}`"
            )
        elif item.incomplete is not None:
            print(f"  {item.incomplete}")
    lost = store.shards(run_id=args.run, states=(LOST_STATE,))
    if not collected:
        print("nothing to resume: every journaled batch is collected")
    if lost and not collected:
        print(
            f"{len(lost)} batches lost their output before it was downloaded "
            "(`inert batches list --pending`); run the same requests again to resubmit their "
            "lines, or abandon them with `inert batches abandon ID`"
        )
    return 0


async def _batches_abandon(args: argparse.Namespace, store: Store) -> int:
    from inert._store import LOST_STATE

    record = store.find_shard(args.id)
    if record is None:
        raise _UsageError(
            f"no batch {args.id!r} in the journal of {store.location}; "
            "`inert batches list --pending` shows the batch ids and row numbers"
        )
    finished = record.state in ("created", "cancelling") and record.remote_status in (
        "completed",
        "expired",
        "cancelled",
    )
    if record.state != LOST_STATE and not finished:
        raise _UsageError(
            f"journal row {record.id} is {record.state}, not lost; only a batch whose output "
            "is gone (expired before it was downloaded, or never served) can be abandoned "
            "(cancel a running one with `inert batches cancel`)"
        )
    moved = store.transition(
        record.id,
        (record.state,),
        "abandoned",
        error=f"{record.error or 'its output could not be read'}; abandoned by hand",
    )
    if moved is None:
        raise _UsageError(f"journal row {record.id} changed meanwhile; look at it again")
    print(
        f"abandoned {record.batch_id or record.id}: its lines are submitted afresh when run again"
    )
    return 0


def _add_batches(commands: Any) -> None:
    batches = commands.add_parser(
        "batches", help="list, show, cancel and resume the batches of a store's journal"
    )
    _add_common(batches, repeated=False)
    sub = batches.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list the journal's batches")
    listing.add_argument("--run", default=None, help="only this run")
    only = {
        "choices": ("openai", "anthropic"),
        "default": None,
        "help": "only the batches of this provider's batch API",
    }
    listing.add_argument("--provider", **only)
    listing.add_argument("--pending", action="store_true", help="only batches not yet collected")
    show = sub.add_parser("show", help="show one batch (by batch id or journal row)")
    show.add_argument("id")
    show.add_argument(
        "--remote", action="store_true", help="also fetch the batch's current remote status"
    )
    cancel = sub.add_parser("cancel", help="cancel one unfinished batch, or all of them")
    cancel.add_argument("id", nargs="?", default=None)
    cancel.add_argument("--run", default=None, help="only batches of this run")
    cancel.add_argument("--provider", **only)
    abandon = sub.add_parser(
        "abandon", help="abandon a batch whose output expired before it was downloaded"
    )
    abandon.add_argument("id")
    resume = sub.add_parser("resume", help="wait for unfinished batches and store their answers")
    resume.add_argument("--run", default=None, help="only batches of this run")
    resume.add_argument("--provider", **only)
    resume.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls")
    resume.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress display (default: on a terminal)",
    )
    for action in (listing, show, cancel, abandon, resume):
        _add_common(action, repeated=True)


def _run_batches(args: argparse.Namespace) -> int:
    from inert._store import DEFAULT_PATH, Store

    path: str | Path = DEFAULT_PATH if args.store is None else args.store  # a URL stays a str
    try:
        # A mistyped path must not look like "no batches": nothing is created there.
        store = Store(path, create=False)
    except StoreError as exc:
        raise _UsageError(str(exc)) from None
    with store:
        if args.action == "list":
            return _batches_list(args, store)
        handlers: dict[str, Callable[[argparse.Namespace, Store], Coroutine[Any, Any, int]]] = {
            "show": _batches_show,
            "cancel": _batches_cancel,
            "resume": _batches_resume,
            "abandon": _batches_abandon,
        }
        import asyncio  # only the commands that call the API need an event loop

        return asyncio.run(handlers[args.action](args, store))


# --- inert emulator / inert demo ------------------------------------------------------------


def _run_emulator(rest: list[str]) -> int:
    from inert.emulator import main as emulator_main

    try:
        return emulator_main(rest)
    except (OSError, OverflowError) as exc:  # the address is taken, or the port out of range
        print(f"inert emulator: cannot serve: {exc}", file=sys.stderr)
        return 1


def _run_demo(rest: list[str]) -> int:
    # The demo is an application beside the lexicon example; imported only when asked for.
    try:
        from lexicon_demo import main as demo_main
    except ImportError as exc:
        print(f"inert demo is not available ({exc}); install the lexicon example", file=sys.stderr)
        return _EXIT_USAGE
    return demo_main(rest)


def _interrupted(args: argparse.Namespace) -> str:
    """What an interrupted command leaves: the answers its store holds, and how to go on."""
    from inert._store import DEFAULT_PATH, Store

    path: str | Path = DEFAULT_PATH if getattr(args, "store", None) is None else args.store
    try:
        with Store(path, create=False) as store:
            kept = store.response_count()
            path = store.location  # a URL without its password
    except StoreError:
        return "interrupted"
    noun = "answer" if kept == 1 else "answers"
    return f"interrupted: {kept:,} {noun} kept in {path}; run the same command again to resume"


def build_parser() -> argparse.ArgumentParser:
    """The ``inert`` command-line parser."""
    parser = _OneLineParser(
        prog="inert", description="inert: typed OpenAI requests, run now or through the Batch API."
    )
    parser.add_argument("--version", action=_Version, help="show inert's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_batches(commands)
    _cli_store.add_parser(commands)
    commands.add_parser(
        "emulator",
        help="serve the local OpenAI-compatible emulator (see `inert emulator --help`)",
        add_help=False,
    )
    commands.add_parser(
        "demo", help="run the dictionary synthesis demo (see `inert demo --help`)", add_help=False
    )
    return parser


def _is_api_error(exc: Exception) -> bool:
    """Whether ``exc`` is the SDK's error or a failed call of the batch journal (only
    possible once a command loaded them)."""
    sdk = sys.modules.get("openai")
    if sdk is not None and isinstance(exc, sdk.OpenAIError):
        return True
    batch = sys.modules.get("inert._runners._batch._http")
    return batch is not None and isinstance(exc, batch.CallFailed)


def main(argv: list[str] | None = None) -> int:
    """Run the ``inert`` command; returns the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    # `emulator` and `demo` own their options: everything after the word is theirs.
    if args_list and args_list[0] == "emulator":
        return _run_emulator(args_list[1:])
    if args_list and args_list[0] == "demo":
        return _run_demo(args_list[1:])
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "batches":
            return _run_batches(args)
        if args.command == "store":
            return _cli_store.run(args)
    except (_UsageError, _cli_store.UsageProblem, StoreError) as exc:
        print(f"inert: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except _cli_store.CommandFailed as exc:
        print(f"inert: {exc}", file=sys.stderr)
        return _cli_store.EXIT_NO
    except Exception as exc:
        if not _is_api_error(exc):
            raise
        print(f"inert: the API call failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"inert: {_interrupted(args)}", file=sys.stderr)
        return _EXIT_INTERRUPTED
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover
