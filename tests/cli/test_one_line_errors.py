"""Every expected failure of every ``inert`` command is one line on stderr and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from inert import Store
from inert._cli import main


def run(argv: list[str]) -> int:
    """The exit status of ``inert ARGV``, whether it returns or exits (argparse does)."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code if isinstance(exited.code, int) else -1


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A store a run wrote: it exists, with an empty journal."""
    path = tmp_path / "store.sqlite3"
    Store(path).close()
    return path


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key in the environment, so commands that need one must say so."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


CASES = {
    "no command": ([], 2, "required: COMMAND"),
    "unknown command": (["frob"], 2, "invalid choice: 'frob'"),
    "no batches action": (["batches"], 2, "required: ACTION"),
    "unknown batches action": (["batches", "lst"], 2, "invalid choice: 'lst'"),
    "unknown option": (["batches", "list", "--bogus"], 2, "unrecognized arguments: --bogus"),
    "missing store": (["batches", "list", "--store", "{tmp}/nope.sqlite3"], 2, "no store at"),
    "not a store": (["batches", "list", "--store", "{text}"], 2, "not an inert store"),
    "unknown batch": (
        ["batches", "show", "batch_x", "--store", "{store}"],
        2,
        "no batch 'batch_x'",
    ),
    "resume without a key": (["batches", "resume", "--store", "{store}"], 2, "OPENAI_API_KEY"),
    "cancel without a key": (["batches", "cancel", "--store", "{store}"], 2, "OPENAI_API_KEY"),
    "demo: no words": (["demo", "--words", "0"], 2, "--words must be between 1 and 300"),
    "demo: more words than the sample": (["demo", "--words", "301"], 2, "between 1 and 300"),
    "demo: no time": (["demo", "--time-scale", "0"], 2, "--time-scale must be positive"),
    "demo: unknown option": (["demo", "--bogus"], 2, "unrecognized arguments: --bogus"),
    "demo: missing store directory": (
        ["demo", "--store", "{tmp}/missing/store.sqlite"],
        2,
        "its directory does not exist",
    ),
    "demo: --base-url without a key": (
        ["demo", "--base-url", "http://127.0.0.1:9/v1"],
        2,
        "OPENAI_API_KEY, which is not set",
    ),
    "demo: --real without a key": (["demo", "--real"], 2, "OPENAI_API_KEY, which is not set"),
    "emulator: port out of range": (["emulator", "--port", "99999"], 1, "cannot serve"),
    "emulator: unknown option": (["emulator", "--bogus"], 2, "unrecognized arguments: --bogus"),
}


@pytest.mark.parametrize(("argv", "status", "says"), CASES.values(), ids=list(CASES))
def test_an_expected_failure_is_one_line_and_a_non_zero_exit(
    argv: list[str],
    status: int,
    says: str,
    tmp_path: Path,
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command prints one line on stderr saying what went wrong, and exits non-zero."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    argv = [a.format(tmp=tmp_path, store=store_path, text=text) for a in argv]

    code = run(argv)

    err = capsys.readouterr().err
    assert status == code
    assert 1 == len(err.splitlines()), err
    assert says in err
    assert "Traceback" not in err
