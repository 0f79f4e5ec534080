"""``inert store``: look into a store, drop bad answers, check and recover the file.

``stats``, ``list``, ``show`` and ``check`` only read; like every command that
only reads, they refuse a path where there is no store instead of creating one.
``forget`` deletes stored answers so that the next run asks again (and pays);
``recover`` copies what can still be read from a damaged store into a new one.
Every failure is one line on stderr with a non-zero status: 1 when the command
ran and the answer is "no" (an unknown key, a damaged file), 2 for a store that
cannot be used or a mistake in the command line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from inert._store_errors import DamagedStoreError, StoreError

if TYPE_CHECKING:
    from inert._store import Store, StoredAnswer

# The store (and sqlite3) are imported by the commands that open one: `inert --help`
# builds this parser without them.

EXIT_NO: Final = 1
_KEY_PREFIX: Final = re.compile(r"[0-9a-f]{6,64}")
_MIN_PREFIX: Final = 6


class CommandFailed(Exception):
    """The command ran and its answer is a failure (exit status 1), said in one line."""


class UsageProblem(Exception):
    """The store cannot be used or the command line is wrong (exit status 2)."""


def _answers(n: int) -> str:
    return f"{n} answer" if n == 1 else f"{n} answers"


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _open(args: argparse.Namespace) -> Store:
    from inert._store import Store

    try:
        return Store(args.store, create=False)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None


def _resolve(store: Store, given: str) -> str:
    """The one stored key that ``given`` is or starts."""
    text = given.lower()
    if not _KEY_PREFIX.fullmatch(text):
        raise UsageProblem(
            f"{given!r} is not an answer key: give the 64 hex digits `inert store list` "
            f"shows, or at least {_MIN_PREFIX} of the first ones"
        )
    found = store.answers(prefix=text, limit=2)
    if not found:
        raise CommandFailed(f"no stored answer has a key starting {text} in {store.location}")
    if len(found) > 1:
        raise CommandFailed(f"the key prefix {text} names several answers; give more digits")
    return found[0].key


def _stats(args: argparse.Namespace) -> int:
    from inert._journal import PENDING_STATES

    with _open(args) as store:
        stats = store.stats()
        now = store.clock()  # leases are kept by the store's clock (a server's, on PostgreSQL)
        held = [r for r in store.shards(states=PENDING_STATES) if r.leased(now)]
    print(f"store            {store.location}")
    print(f"size             {stats.size_bytes:,} bytes (schema version {stats.schema_version})")
    print(f"answers          {stats.answers:,}")
    if stats.not_answers:
        print(
            f"not answers      {stats.not_answers:,} stored error objects "
            "(`inert store forget --all-failed` drops them)"
        )
    print(f"tokens           {stats.prompt_tokens:,} in, {stats.completion_tokens:,} out")
    for group in stats.groups:
        print(
            f"  {group.endpoint}  {group.model or '-'}  {group.source}: {group.answers:,} "
            f"answers, {group.prompt_tokens:,} in, {group.completion_tokens:,} out"
        )
    shards = ", ".join(f"{n:,} {state}" for state, n in stats.shards.items()) or "none"
    print(f"batch runs       {stats.runs:,}")
    print(f"batches          {shards}")
    if held:
        owners = sorted({str(r.owner) for r in held})
        print(
            f"held by runs     {len(held):,} batches, by {', '.join(owners[:3])}"
            + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
            + " (`inert batches list` says which)"
        )
    if stats.anomalies:
        print(f"anomalies        {stats.anomalies:,} (`inert batches show ID` says which)")
    return 0


def _print_answers(answers: list[StoredAnswer]) -> None:
    header = ("KEY", "ENDPOINT", "MODEL", "SOURCE", "IN", "OUT", "STORED")
    rows = [
        (
            a.key,
            a.endpoint,
            a.model or "-",
            a.source,
            str(a.prompt_tokens),
            str(a.completion_tokens),
            _when(a.created_at),
        )
        for a in answers
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        answers = store.answers(
            failed=args.failed, endpoint=args.endpoint, model=args.model, limit=args.limit
        )
        if not answers:
            what = "stored error objects" if args.failed else "answers"
            print(f"no {what} in {store.location}")
            return 0
        _print_answers(answers)
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        key = _resolve(store, args.key)
        body = store.get_responses([key])[key]
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def _forget(args: argparse.Namespace) -> int:
    if bool(args.keys) == args.all_failed:
        raise UsageProblem("give the keys of the answers to forget, or --all-failed (not both)")
    with _open(args) as store:
        if args.all_failed:
            keys = [a.key for a in store.answers(failed=True)]
        else:
            keys = [_resolve(store, given) for given in args.keys]  # all or nothing
        if args.dry_run:
            for key in keys:
                print(f"would forget {key}")
            print(f"{_answers(len(keys))} would be forgotten (nothing was changed)")
            return 0
        if not keys:  # --all-failed on a store without error objects
            print("no stored body is an error object: nothing was forgotten")
            return 0
        forgotten = store.forget(keys)
    for key in keys:
        print(f"forgot {key}")
    print(
        f"{_answers(forgotten)} forgotten; the next run sends those calls again (and pays for them)"
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from inert._store import Store

    try:
        opened = Store(args.store, create=False)
    except DamagedStoreError as exc:
        raise CommandFailed(str(exc)) from None
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    with opened as store:
        try:
            problems = store.check()
        except DamagedStoreError as exc:
            raise CommandFailed(str(exc)) from None
        path = store.location
    if problems:
        shown = "; ".join(problems[:3])
        raise CommandFailed(
            f"the store {path} is damaged ({shown}); copy its readable answers into a new "
            f"store with `inert store recover {path} NEW_PATH`"
        )
    print(f"{path}: no damage found")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from inert._store_recover import recover

    try:
        report = recover(Path(args.damaged), Path(args.new))
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    for table, copied, lost in report.tables:
        suffix = f", {lost} unreadable" if lost else ""
        print(f"{table}: {copied} rows copied{suffix}")
    print(f"{_answers(report.answers)} recovered into {report.destination}")
    if not report.answers and report.unreadable:
        raise CommandFailed(
            f"no answer could be read from {args.damaged}; the sqlite3 tool's `.recover` "
            "command may read more of it"
        )
    return 0


def add_parser(commands: Any) -> None:
    """Add ``inert store`` and its actions to the ``inert`` parser."""
    store = commands.add_parser(
        "store", help="look into a store, forget bad answers, check or recover the file"
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help="the store: a file, or a postgresql:// URL (default: .inert/store.sqlite3 in the "
        "current directory)",
    )
    store.add_argument("--store", default=None, help=argparse.SUPPRESS)
    sub = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("stats", parents=[where], help="what the store holds")
    listing = sub.add_parser("list", parents=[where], help="stored answers, newest first")
    listing.add_argument("--failed", action="store_true", help="only stored error objects")
    listing.add_argument("--endpoint", default=None, help="only this endpoint")
    listing.add_argument("--model", default=None, help="only this model")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    show = sub.add_parser("show", parents=[where], help="print one stored answer as JSON")
    show.add_argument("key", help="the answer's key, or its first digits")
    forget = sub.add_parser(
        "forget", parents=[where], help="drop stored answers so the next run asks again"
    )
    forget.add_argument("keys", nargs="*", metavar="KEY", help="keys (or their first digits)")
    forget.add_argument(
        "--all-failed", action="store_true", help="every stored body that is an error object"
    )
    forget.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    sub.add_parser("check", parents=[where], help="read every page and report any damage")
    rescue = sub.add_parser(
        "recover", help="copy what can be read from a damaged store into a new store"
    )
    rescue.add_argument("damaged", help="the damaged store (it is only read)")
    rescue.add_argument("new", help="the new store to create (must not exist)")


def run(args: argparse.Namespace) -> int:
    """Run one ``inert store`` action; raises CommandFailed or UsageProblem on failure."""
    actions = {
        "stats": _stats,
        "list": _list,
        "show": _show,
        "forget": _forget,
        "check": _check,
        "recover": _recover,
    }
    return actions[args.action](args)
