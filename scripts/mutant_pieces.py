"""Mutation testing in pieces: one mutmut run per group of modules, then one score.

The whole run (every money-critical module against every test that guards it) takes
hours on a shared two-core machine. This script runs it a piece at a time (pieces in
``scripts/mutant_pieces.toml``): each piece gets its own directory
``mutants-pieces/NAME/`` holding a copy of ``src/``, ``tests/``, ``typestubs/`` and
``pyproject.toml`` whose ``[tool.mutmut]`` names only that piece's modules, tests and
type check; mutmut runs there, under ``nice``, with the parallelism asked for.

Timeouts are then checked again (``recheck``): mutmut stops a mutant's tests after
``timeout_multiplier`` times their measured time, and on a loaded machine a slow but
passing run can look like a hang. Each timed-out mutant's tests are run again, alone,
with a limit of ``RECHECK_FLOOR`` seconds or 20 times their measured time (whichever is
longer) and a traceback dump before the limit: a run that fails is a kill, a run that
passes is a survivor, a run still going at the limit is a hang the mutation caused
(the unmutated tests took a twentieth of that) and counts as detected: a suite that
never ends fails CI just as surely.

``score`` adds up the pieces: per module, mutants killed by tests, caught by mypy
(``type_check_command``), hangs, survivors, equivalents (listed in
``scripts/equivalent_mutants.toml`` with a reason; mutmut still runs them, and they are
left out of the score only when they survive) and mutants no test reaches.

    python scripts/mutant_pieces.py run NAME [--workers N] [--resume]
    python scripts/mutant_pieces.py recheck NAME
    python scripts/mutant_pieces.py verify NAME
    python scripts/mutant_pieces.py score [NAME...]
    python scripts/mutant_pieces.py survivors NAME
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIECES = ROOT / "scripts" / "mutant_pieces.toml"
EQUIVALENTS = ROOT / "scripts" / "equivalent_mutants.toml"
WORK = ROOT / "mutants-pieces"
VENV_BIN = ROOT / ".venv" / "bin"
TIMEOUT_CONSTANT = 5.0
"""Seconds added to a mutant's measured test time before mutmut's multiplier (its default
is 1): mutmut measures only the tests' call phase, and a forked child also sets up its
fixtures (an emulator takes seconds to start on a loaded machine), so with 1 s tests that
pass in 6 s were stopped as timeouts."""
RECHECK_FLOOR = 60.0
"""Seconds a timed-out mutant's tests get, at least, when run again alone."""

# mutmut's exit codes (mutmut.stats.status_by_exit_code).
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    37: "type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}


def pieces() -> dict[str, dict[str, Any]]:
    """Each piece: ``modules`` to mutate, fast ``tests`` for mutmut, ``more_tests`` for
    its survivors, and optionally ``pytest_args`` added to mutmut's runs (and to verify's
    first stage) and ``fastest_first`` (mutmut runs a mutant's tests by their measured
    time, fastest first: scripts/_mutant_order.py)."""
    with PIECES.open("rb") as file:
        return tomllib.load(file)


def piece_dir(name: str) -> Path:
    return WORK / name


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def piece_pyproject(piece: dict[str, list[str]]) -> str:
    """The project's pyproject.toml with [tool.mutmut] narrowed to ``piece``."""
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[tool\.mutmut\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section is not None, "pyproject.toml has no [tool.mutmut]"
    config = tomllib.loads("[tool.mutmut]\n" + section.group(1))["tool"]["mutmut"]
    check = [arg for arg in config["type_check_command"] if not arg.startswith("src/")]
    lines = [
        "[tool.mutmut]",
        f"source_paths = {toml_list(config['source_paths'])}",
        f"only_mutate = {toml_list(piece['modules'])}",
        f"also_copy = {toml_list(config.get('also_copy', []))}",
        f"pytest_add_cli_args_test_selection = {toml_list(piece['tests'])}",
        "pytest_add_cli_args = "
        + toml_list(
            [
                *config.get("pytest_add_cli_args", []),
                *piece.get("pytest_args", []),
                *(["-p", "_mutant_order"] if piece.get("fastest_first") else []),
            ]
        ),
        (
            f"type_check_command = {toml_list(check + piece['modules'])}"
            if piece.get("type_check", True)
            else "type_check_command = []"
        ),
        f"timeout_multiplier = {config.get('timeout_multiplier', 15.0)}",
        f"timeout_constant = {TIMEOUT_CONSTANT}",
        "",
        "",
    ]
    return text[: section.start()] + "\n".join(lines) + text[section.end() :]


def run(name: str, workers: int, resume: bool) -> int:
    piece = pieces()[name]
    where = piece_dir(name)
    if not resume:
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        for part in ("src", "tests", "typestubs"):
            shutil.copytree(
                ROOT / part, where / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        (where / "pyproject.toml").write_text(piece_pyproject(piece))
        (where / "commit.txt").write_text(commit() + "\n")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        # Where pytest finds scripts/_mutant_order.py (``fastest_first`` pieces).
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "scripts"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    started = time.monotonic()
    status = subprocess.call(
        ["nice", "-n", "10", str(VENV_BIN / "mutmut"), "run", "--max-children", str(workers)],
        cwd=where,
        env=env,
    )
    print(f"piece {name}: mutmut exited {status} after {time.monotonic() - started:.0f}s")
    return status


def commit() -> str:
    """The commit measured, marked ``+changes`` when the work tree differs from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "src", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+changes" if dirty else "")


def metas(name: str) -> dict[str, dict[str, Any]]:
    """The mutmut meta file of each mutated module of piece ``name``, by module path."""
    found: dict[str, dict[str, Any]] = {}
    base = piece_dir(name) / "mutants"
    for meta in sorted(base.rglob("*.py.meta")):
        found[str(meta.relative_to(base))[: -len(".meta")]] = json.loads(meta.read_text())
    return found


def tests_by_function(name: str, stats_file: str) -> dict[str, list[str]]:
    stats = json.loads((piece_dir(name) / "mutants" / stats_file).read_text())
    return dict(stats["tests_by_mangled_function_name"])


FULL_STATS = "mutmut-stats.full.json"
"""mutmut's map of the tests reaching each function, kept whole when a piece's run was
resumed with a narrowed map (``mutmut-stats.json`` with the slower tests of some
functions left out, so that mutmut gets through every mutant in the time there is):
verify then runs each survivor against the tests mutmut left out."""


def verify_reaching(name: str) -> dict[str, list[str]]:
    """The tests verify's first stage runs for each function: those reaching it that
    mutmut has not run its mutants against (all of them, without a narrowed map)."""
    narrowed = tests_by_function(name, "mutmut-stats.json")
    if not (piece_dir(name) / "mutants" / FULL_STATS).exists():
        return narrowed
    full = tests_by_function(name, FULL_STATS)
    return {f: sorted(set(tests) - set(narrowed.get(f, []))) for f, tests in full.items()}


def rechecked_path(name: str) -> Path:
    return piece_dir(name) / "rechecked.json"


def rechecked(name: str) -> dict[str, str]:
    path = rechecked_path(name)
    return json.loads(path.read_text()) if path.exists() else {}


def check_trampolines(where: Path, tests: list[str], extra: Sequence[str] = ()) -> None:
    """Make sure a run of ``tests`` in ``where`` imports the mutated code: with mutmut's
    ``fail`` mutant every mutated function raises, so the tests must fail."""
    if run_alone(where, "fail", tests, 3600, extra) != "killed":
        sys.exit(f"{where}: the tests pass with every mutant failing: not the mutated code")


def recheck(name: str) -> None:
    """Run each timed-out mutant's tests again, alone, with a generous limit."""
    verdicts = rechecked(name)
    tests = tests_by_function(name, "mutmut-stats.json")
    where = piece_dir(name) / "mutants"
    check_trampolines(where, pieces()[name]["tests"])
    for meta in metas(name).values():
        for mutant, code in meta["exit_code_by_key"].items():
            if STATUS.get(code) != "timeout" or mutant in verdicts:
                continue
            selected = sorted(tests.get(mutant.partition("__mutmut_")[0], []))
            estimate = float(meta["estimated_durations_by_key"].get(mutant, 1.0))
            limit = max(RECHECK_FLOOR, 20 * estimate)
            verdicts[mutant] = run_alone(where, mutant, selected, limit)
            print(f"{mutant}: {verdicts[mutant]} (limit {limit:.0f}s)", flush=True)
            rechecked_path(name).write_text(json.dumps(verdicts, indent=1, sort_keys=True))


def run_alone(
    where: Path, mutant: str, tests: Sequence[str], limit: float, extra: Sequence[str] = ()
) -> str:
    """``killed``, ``survived`` or ``hang``: the mutant's tests run once, stopped at ``limit``."""
    env = {
        **os.environ,
        "MUTANT_UNDER_TEST": mutant,  # "" runs the unmutated code, "fail" fails every call
        # Before the editable install's path to the project's own src/, which is not mutated.
        "PYTHONPATH": str(where / "src"),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        "nice", "-n", "10", str(VENV_BIN / "python"), "-m", "pytest", "-x", "-q",
        "-p", "no:cacheprovider", "--rootdir=.", "-o", f"faulthandler_timeout={int(limit) - 5}",
        *extra, *tests,
    ]  # fmt: skip
    log = where.parent / "rechecks" / f"{mutant or 'no-mutant'}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        child = subprocess.Popen(
            command,
            cwd=where,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = child.wait(limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return "hang"
    return "survived" if status == 0 else "killed"


def verify(name: str, first_stage: int = 1, last_stage: int = 2) -> None:
    """Run each survivor again against the piece's tests, then its more tests, as they are now.

    Tests written after a piece ran are not in its copy, nor in mutmut's map of which
    test reaches which function: the project's current ``tests/`` is copied into the
    piece and checked to pass with no mutant active (and to fail with mutmut's
    ``fail`` mutant, which proves the mutated code is what is imported). Then each
    survivor, timeout not yet rechecked and mutant no fast test reached runs, in a
    fresh process with the mutation on, against the piece's ``tests`` that can reach
    it: those mutmut saw call its function, and every test file changed or added
    since the piece ran (a test unchanged since then that never called the function
    cannot fail for its mutant); a mutant listed as equivalent that mutmut saw survive is
    not run again. Those still passing (unless listed as equivalent) run
    against ``tests`` and ``more_tests`` together, the slower tests of the same code. A
    failure is a kill, a run past three times the clean run (and at least a minute) a
    hang; both are recorded in ``rechecked.json``.
    """
    where = piece_dir(name) / "mutants"
    changed = changed_test_files(name)
    shutil.rmtree(where / "tests")
    shutil.copytree(ROOT / "tests", where / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    piece = pieces()[name]
    stages = [piece["tests"]]
    if piece.get("more_tests"):
        stages.append([*piece["tests"], *piece["more_tests"]])
    verdicts = rechecked(name)
    same = equivalents()
    wanted = set(piece["modules"])
    reaching = verify_reaching(name)
    open_: list[str] = []
    for module, meta in metas(name).items():
        if module not in wanted:
            continue
        for mutant, code in meta["exit_code_by_key"].items():
            status = STATUS.get(code, "suspicious")
            if status == "survived" and mutant in same and first_stage == 1:
                continue  # equivalent, and mutmut saw it survive: nothing new to learn
            if status in ("survived", "timeout", "no tests") and verdicts.get(mutant) in (
                None,
                "survived",
            ):
                open_.append(mutant)
    for number, tests in enumerate(stages):
        if number + 1 < first_stage or number + 1 > last_stage:
            continue
        if number > 0:
            open_ = [
                m for m in open_ if verdicts.get(m, "survived") == "survived" and m not in same
            ]
        if not open_:
            break
        extra = list(piece.get("pytest_args", [])) if number == 0 else []
        check_trampolines(where, tests, extra)
        started = time.monotonic()
        if run_alone(where, "", tests, 3600, extra) != "survived":
            sys.exit(f"piece {name}: its tests fail with no mutant active; see rechecks/")
        limit = max(RECHECK_FLOOR, 3 * (time.monotonic() - started))
        for mutant in open_:
            selected = tests
            if number == 0:
                calls = reaching.get(mutant.partition("__mutmut_")[0], [])
                # The new tests first: they are the likeliest to fail (-x stops there).
                selected = [
                    *changed,
                    *sorted(t for t in calls if t.partition("::")[0] not in changed),
                ]
                if not selected:
                    continue  # no test can reach it: it stays as mutmut left it
            verdicts[mutant] = run_alone(where, mutant, selected, limit, extra)
            print(f"{mutant}: {verdicts[mutant]} (stage {number + 1})", flush=True)
            rechecked_path(name).write_text(json.dumps(verdicts, indent=1, sort_keys=True))


def changed_test_files(name: str) -> list[str]:
    """The piece's test files that differ from (or are missing in) its copy made by ``run``.

    Kept in ``changed-tests.json`` the first time, since verify replaces the mutated
    copy's tests and a later verify must still know what changed since mutmut ran.
    """
    record = piece_dir(name) / "changed-tests.json"
    known: set[str] = set(json.loads(record.read_text())) if record.exists() else set()
    for entry in pieces()[name]["tests"]:
        top = ROOT / entry
        for path in sorted(top.rglob("test_*.py")) if top.is_dir() else [top]:
            relative = str(path.relative_to(ROOT))
            old = piece_dir(name) / relative
            if not old.exists() or old.read_bytes() != path.read_bytes():
                known.add(relative)
    record.write_text(json.dumps(sorted(known), indent=1))
    return sorted(known)


def equivalents() -> dict[str, str]:
    """Mutants judged equivalent, each with its reason."""
    if not EQUIVALENTS.exists():
        return {}
    with EQUIVALENTS.open("rb") as file:
        return {name: str(reason) for name, reason in tomllib.load(file).items()}


COLUMNS = ("mutants", "type check", "killed", "hang", "survived", "equivalent", "no tests")


def tally(name: str) -> dict[str, Counter[str]]:
    """Per module of piece ``name``: how many mutants ended in each column."""
    verdicts = rechecked(name)
    same = equivalents()
    by_module: dict[str, Counter[str]] = {}
    wanted = set(pieces()[name]["modules"])
    for module, meta in metas(name).items():
        if module not in wanted:
            continue  # mutated by an earlier definition of the piece, now measured elsewhere
        counts: Counter[str] = Counter()
        for mutant, code in meta["exit_code_by_key"].items():
            status = STATUS.get(code, "suspicious")
            if status == "timeout":
                status = verdicts.get(mutant, "timeout (not rechecked)")
            elif status in ("survived", "no tests"):
                status = verdicts.get(mutant, status)
            if status == "survived" and mutant in same:
                status = "equivalent"
            counts["mutants"] += 1
            counts[status] += 1
        by_module[module] = counts
    return by_module


def score(names: list[str]) -> None:
    """A markdown table: per module, then the total and the score."""
    total: Counter[str] = Counter()
    print("| module | at | " + " | ".join(COLUMNS) + " | score | by tests alone |")
    print("| --- " * (len(COLUMNS) + 4) + "|")
    others: Counter[str] = Counter()
    for name in names:
        measured = piece_dir(name) / "commit.txt"
        at = measured.read_text().strip() if measured.exists() else "?"
        for module, counts in tally(name).items():
            total.update(counts)
            others.update({k: v for k, v in counts.items() if k not in COLUMNS})
            print(row(f"`{module.removeprefix('src/inert/')}` | {at}", counts))
    print(row("total | ", total))
    if others:
        print(f"\nother statuses: {dict(others)}")


def row(label: str, counts: Counter[str]) -> str:
    counted = counts["mutants"] - counts["equivalent"]
    detected = counts["killed"] + counts["type check"] + counts["hang"]
    share = f"{100 * detected / counted:.1f} %" if counted else "-"
    tested = counted - counts["type check"]
    by_tests = counts["killed"] + counts["hang"]
    alone = f"{100 * by_tests / tested:.1f} %" if tested else "-"
    cells = " | ".join(str(counts[c]) for c in COLUMNS)
    return f"| {label} | {cells} | {share} | {alone} |"


def survivors(name: str) -> None:
    verdicts = rechecked(name)
    same = equivalents()
    wanted = set(pieces()[name]["modules"])
    for module, meta in metas(name).items():
        if module not in wanted:
            continue
        for mutant, code in meta["exit_code_by_key"].items():
            status = STATUS.get(code, "suspicious")
            if status == "timeout":
                status = verdicts.get(mutant, "timeout (not rechecked)")
            elif status in ("survived", "no tests"):
                status = verdicts.get(mutant, status)
            if status in ("killed", "type check", "hang"):
                continue
            note = (
                f"  [equivalent: {same[mutant]}]" if mutant in same and status == "survived" else ""
            )
            print(f"{mutant}: {status}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("name")
    run_parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("INERT_MUTANT_WORKERS", "1"))
    )
    run_parser.add_argument("--resume", action="store_true")
    commands.add_parser("recheck").add_argument("name")
    commands.add_parser("score").add_argument("names", nargs="*")
    commands.add_parser("survivors").add_argument("name")
    verify_parser = commands.add_parser("verify")
    verify_parser.add_argument("name")
    verify_parser.add_argument("--stage", type=int, default=1, help="start at this stage")
    verify_parser.add_argument("--last-stage", type=int, default=2, help="end after this stage")
    args = parser.parse_args()
    if args.command == "run":
        sys.exit(run(args.name, args.workers, args.resume))
    if args.command == "recheck":
        recheck(args.name)
    elif args.command == "verify":
        verify(args.name, args.stage, args.last_stage)
    elif args.command == "score":
        score(args.names or [name for name in pieces() if (piece_dir(name) / "mutants").exists()])
    else:
        survivors(args.name)


if __name__ == "__main__":
    main()
