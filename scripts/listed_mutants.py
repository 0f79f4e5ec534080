"""Apply each hand-written money mutation in a throwaway copy and check that the tests fail.

Each mutation below is one bug that once survived the whole suite. For each, the
project (sources and tests, no .git or .venv) is copied to a temporary directory,
the mutation's text replacement is applied there (it must match exactly once, so a
refactor that moves the code makes this script fail loudly instead of passing),
and pytest runs on the copy with ``-x``: the mutation is caught when some test
fails. The tests that caught a mutation before run first, alone (``first``); the
money folders run only when those pass. The unmutated copy runs the money folders
first, so a failure is the mutation's doing.

Run it with ``scripts/mutants --listed`` (or ``.venv/bin/python scripts/listed_mutants.py
[NAME...]``); it prints one line per mutation and exits 1 if any survived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "mutants",
    "mutants-pieces",
    "__pycache__",
    ".mypy_cache",
    ".mypy_cache_mutants",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".inert",
    "*.egg-info",
    "results",
)
MONEY_TESTS = ("tests/money", "tests/batch", "tests/store", "tests/immediate", "tests/reliability")
"""The test folders that guard the money; each mutation runs these (stopping at the first failure)."""


@attrs.frozen
class Mutation:
    """One bug: replace ``old`` by ``new`` in ``path`` (``old`` must occur exactly once)."""

    name: str
    path: str
    old: str
    new: str
    first: tuple[str, ...] = ()
    """Tests that caught it before: they run first, alone; the money folders run only when
    these pass (a refactor may have moved the catching elsewhere)."""


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "answers of expired or cancelled batches are not stored",
        "src/inert/_runners/_batch/_journal.py",
        "if is_success(line) and (keep is None or keep(cid, line.body))",
        "if is_success(line) and (keep is None or keep(cid, line.body)) "
        "and batch.status == 'completed'",
        first=("tests/batch/test_batch_runner.py::test_expired_batch_keeps_its_completed_part",),
    ),
    Mutation(
        "Store.get_responses reads only the first 500 keys",
        "src/inert/_store.py",
        "            for chunk in _chunks(keys, 500):\n                marks",
        "            for chunk in list(_chunks(keys, 500))[:1]:\n                marks",
        first=("tests/store/test_backends.py::test_many_lookups_in_one_call",),
    ),
    Mutation(
        "polls are not retried on transient errors",
        "src/inert/_runners/_batch/_journal.py",
        "self._polls = Backoff(poll_interval, poll_interval_max, POLL_TRIES)",
        "self._polls = Backoff(poll_interval, poll_interval_max, 1)",
        first=("tests/batch/test_batch_journal_units.py",),
    ),
    Mutation(
        "downloads are not retried on transient errors",
        "src/inert/_runners/_batch/_journal.py",
        "            return await remote.download(file_id)\n\n        try:\n"
        "            return await retrying(what, once, self._calls)",
        "            return await remote.download(file_id)\n\n        try:\n"
        "            return await retrying(what, once, Backoff(0.0, 0.0, 1))",
        first=("tests/batch/test_transient_http.py",),
    ),
    Mutation(
        "a duplicate output line overrides a success",
        "src/inert/_runners/_batch/_output.py",
        "            previous = lines.get(cid)",
        "            previous = None",
        first=("tests/batch/test_output_lines.py",),
    ),
    Mutation(
        "a stray unknown custom_id line is stored",
        "src/inert/_runners/_batch/_output.py",
        "            if cid not in known:",
        "            if False:",
        first=("tests/batch/test_batch_runner.py::test_unknown_custom_id_is_never_assigned",),
    ),
    Mutation(
        "input and output prices swapped",
        "src/inert/_pricing.py",
        "prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million",
        "prompt_tokens * self.output_per_million + completion_tokens * self.input_per_million",
        first=("tests/money/test_costs.py",),
    ),
    Mutation(
        "tokens_per_minute ignored",
        "src/inert/_runners/_immediate.py",
        "self.tokens = None if tpm is None else _limiter(tpm, 10.0)",
        "self.tokens = None",
        first=("tests/money/test_token_pacing.py",),
    ),
    Mutation(
        "pending-shard lookup ignores cancelling shards",
        "src/inert/_journal.py",
        'PENDING_STATES: Final = ("intended", "uploaded", "created", "cancelling", "lost")',
        'PENDING_STATES: Final = ("intended", "uploaded", "created", "lost")',
        first=("tests/batch/test_cancel.py",),
    ),
    Mutation(
        "unsent shards are never looked up remotely",
        "src/inert/_runners/_batch/_runner.py",
        "await self._journal.resolve_unsent(unsent, held_by=run_id)",
        "pass",
        first=("tests/batch/test_batch_crash.py::test_killed_run_resumes_and_pays_once[create]",),
    ),
)


def copy_project(into: Path) -> Path:
    """A copy of the project's files under ``into`` (no git metadata, no virtualenv)."""
    target = into / "project"
    shutil.copytree(ROOT, target, ignore=IGNORED)
    return target


def apply(project: Path, mutation: Mutation) -> None:
    """Apply ``mutation`` to the copy; refuse when its text is not found exactly once."""
    path = project / mutation.path
    text = path.read_text(encoding="utf-8")
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(
            f"mutation {mutation.name!r}: expected its text once in {mutation.path}, found it "
            f"{found} times; update scripts/listed_mutants.py to the current code"
        )
    path.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")


def run_tests(
    project: Path, tests: Sequence[str], workers: str, limit: float | None = None
) -> tuple[int | None, str]:
    """pytest on the copy, importing inert from the copy; (exit code, its output).

    The exit code is ``None`` when the run was stopped at ``limit`` seconds (a hang).
    """
    env = dict(os.environ, PYTHONPATH=str(project / "src"))
    where = subprocess.run(
        [sys.executable, "-c", "import inert; print(inert.__file__)"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(project)):
        raise SystemExit(f"the copy imports inert from {where}, not from the copy")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    if workers != "0":
        command += ["-n", workers]
    with subprocess.Popen(
        [*command, *tests],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its workers and children are stopped with it
    ) as child:
        try:
            output, _ = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            return None, output
    return child.returncode, output


def main(argv: Sequence[str] | None = None) -> int:
    """Check every (or every named) mutation; 0 when each one made a test fail."""
    parser = argparse.ArgumentParser(
        description="Check that each listed money mutation fails the tests."
    )
    parser.add_argument("names", nargs="*", help="only the mutations whose name contains one")
    parser.add_argument("--workers", default=os.environ.get("INERT_TEST_WORKERS", "2"))
    parser.add_argument(
        "--limit",
        type=float,
        default=600.0,
        help="seconds a run of a mutation's first tests may take; past it they hang, which "
        "counts as caught (a suite that never ends fails CI), as in scripts/mutant_pieces.py",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the unmutated copy runs only the chosen mutations' first tests, not the money "
        "folders (enough to show that a failure of those tests is the mutation's doing)",
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.names or any(n in m.name for n in args.names)]
    survived: list[str] = []
    with tempfile.TemporaryDirectory(prefix="inert-mutants-") as tmp:
        clean = copy_project(Path(tmp) / "clean")
        baseline = sorted({t for m in chosen for t in m.first}) if args.quick else list(MONEY_TESTS)
        started = time.monotonic()
        code, output = run_tests(clean, baseline, args.workers)
        if code != 0:
            print(f"the unmutated copy fails its tests; fix that first:\n{output[-3000:]}")
            return 2
        print(
            f"unmutated copy: the tests pass ({output.strip().splitlines()[-1]}; "
            f"{time.monotonic() - started:.0f} s)"
        )
        for mutation in chosen:
            started = time.monotonic()
            project = copy_project(Path(tmp) / f"m{MUTATIONS.index(mutation)}")
            apply(project, mutation)
            failed: list[str] = []
            code = 0
            if mutation.first:
                code, output = run_tests(project, mutation.first, args.workers, args.limit)
                failed = [line for line in output.splitlines() if line.startswith("FAILED")]
            if code is None:
                verdict = "hang"
                failed = [f"{' '.join(mutation.first)} still running after {args.limit:.0f} s"]
            else:
                if not failed:
                    code, output = run_tests(project, MONEY_TESTS, args.workers)
                    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
                # With -x on workers pytest exits 2 (interrupted) after the first failure.
                verdict = "caught" if failed else ("SURVIVED" if code == 0 else f"error {code}")
            print(f"{verdict:8} {mutation.name} ({time.monotonic() - started:.0f} s)", flush=True)
            for line in failed[:1]:
                print(f"         {line}", flush=True)
            if not failed:
                survived.append(mutation.name)
                if code != 0:
                    print(output[-3000:])
            shutil.rmtree(project)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
