"""The ``inert store`` command: stats, list, show, forget, check, recover; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inert import Op, Store
from inert._cli import main
from inert._json import JSON


def op(i: int) -> Op[JSON]:
    """The ``i``-th small op."""
    return Op(endpoint="/v1/chat/completions", body={"model": "m", "i": i}, decode=lambda r: r)


GOOD = [op(i) for i in range(3)]
BAD = op(99)


@pytest.fixture
def filled(store_path: Path) -> Path:
    """A store with three answers and one error object an older inert kept."""
    with Store(store_path) as store:
        store.put_responses(
            [
                (o, {"n": i, "usage": {"prompt_tokens": 2, "completion_tokens": 3}})
                for i, o in enumerate(GOOD)
            ]
        )
        store.put_responses([(BAD, {"error": {"message": "from a proxy"}})])
    return store_path


def inert(*argv: str) -> int:
    """Run the ``inert`` command in process."""
    return main(list(argv))


def one_line_error(err: str) -> str:
    """The error a command printed, checked to be a single ``inert:`` line."""
    lines = err.strip().splitlines()
    assert 1 == len(lines), err
    assert lines[0].startswith("inert: ")
    return lines[0]


def stored_keys(path: Path) -> set[str]:
    """Every key the store holds."""
    with Store(path) as store:
        return {a.key for a in store.answers()}


def test_stats_counts_answers_tokens_and_error_objects(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``stats`` says how many answers and tokens, and points at stored error objects."""
    assert 0 == inert("store", "stats", "--store", str(filled))
    out = capsys.readouterr().out
    assert "answers          4" in out
    assert "1 stored error objects" in out
    assert "6 in, 9 out" in out


def test_list_failed_shows_only_error_objects(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``list --failed`` lists the error object's key and no answer's."""
    assert 0 == inert("store", "--store", str(filled), "list", "--failed")
    out = capsys.readouterr().out
    assert BAD.key in out
    assert not any(o.key in out for o in GOOD)


def test_show_prints_the_stored_body_by_key_prefix(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``show`` takes the first digits of a key and prints that answer as JSON."""
    assert 0 == inert("store", "show", GOOD[1].key[:10], "--store", str(filled))
    assert 1 == json.loads(capsys.readouterr().out)["n"]


@pytest.mark.parametrize(
    ("given", "status", "says"),
    [
        ("0" * 64, 1, "no stored answer"),
        ("xyz", 2, "is not an answer key"),
        ("ab", 2, "at least 6"),
    ],
)
def test_show_of_an_unknown_or_malformed_key_is_a_one_line_error(
    filled: Path, capsys: pytest.CaptureFixture[str], given: str, status: int, says: str
) -> None:
    """An unknown key exits 1, a malformed one 2, each with one line saying which."""
    assert status == inert("store", "show", given, "--store", str(filled))
    assert says in one_line_error(capsys.readouterr().err)


def test_forget_by_key_and_prefix_removes_those_answers(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``forget`` takes full keys and prefixes, and removes exactly those answers."""
    assert 0 == inert("store", "forget", GOOD[0].key, GOOD[1].key[:8], "--store", str(filled))
    assert "2 answers forgotten" in capsys.readouterr().out
    assert {GOOD[2].key, BAD.key} == stored_keys(filled)


def test_forget_with_one_unknown_key_forgets_nothing(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All or nothing: one key that names no answer leaves every answer in place (exit 1)."""
    before = stored_keys(filled)
    assert 1 == inert("store", "forget", GOOD[0].key, "f" * 64, "--store", str(filled))
    assert "no stored answer" in one_line_error(capsys.readouterr().err)
    assert before == stored_keys(filled)


def test_forget_all_failed_dry_run_changes_nothing_and_then_drops_error_objects(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--all-failed --dry-run`` lists the error object; ``--all-failed`` drops it alone."""
    assert 0 == inert("store", "forget", "--all-failed", "--dry-run", "--store", str(filled))
    said = capsys.readouterr().out
    assert f"would forget {BAD.key}" in said
    assert "1 answer would be forgotten" in said
    assert 4 == len(stored_keys(filled))
    assert 0 == inert("store", "forget", "--all-failed", "--store", str(filled))
    assert {o.key for o in GOOD} == stored_keys(filled)
    capsys.readouterr()
    assert 0 == inert("store", "forget", "--all-failed", "--store", str(filled))
    assert "nothing was forgotten" in capsys.readouterr().out
    assert {o.key for o in GOOD} == stored_keys(filled)


def test_forget_needs_keys_or_all_failed(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``forget`` with nothing to forget is a usage error (exit 2)."""
    assert 2 == inert("store", "forget", "--store", str(filled))
    assert "--all-failed" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(
    "command",
    [
        ["batches", "--store", "{path}", "list"],
        ["batches", "--store", "{path}", "show", "1"],
        ["store", "stats", "--store", "{path}"],
        ["store", "list", "--store", "{path}"],
        ["store", "show", "abcdef", "--store", "{path}"],
        ["store", "forget", "abcdef", "--store", "{path}"],
        ["store", "check", "--store", "{path}"],
    ],
    ids=lambda c: " ".join(w for w in c if w not in ("--store", "{path}")),
)
def test_commands_refuse_a_missing_store_and_create_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """``--store typo`` is a one-line error (exit 2), and no file appears at the typo."""
    path = tmp_path / "typo"
    assert 2 == inert(*(str(path) if w == "{path}" else w for w in command))
    assert "there is no store at" in one_line_error(capsys.readouterr().err)
    assert [] == list(tmp_path.iterdir())


def test_show_of_a_huge_row_number_is_a_one_line_error(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row number past SQLite's integers says there is no such batch, no OverflowError."""
    assert 2 == inert("batches", "--store", str(filled), "show", "99999999999999999999999")
    assert "no batch" in one_line_error(capsys.readouterr().err)


def damage(path: Path) -> None:
    """Overwrite a page in the middle of the file."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xde\xad\xbe\xef" * 1024)


@pytest.fixture
def damaged(store_path: Path) -> tuple[Path, set[str]]:
    """A store of 300 answers and a journal entry, with garbage over a page in the middle."""
    ops = [op(i) for i in range(300)]
    with Store(store_path) as store:
        store.put_responses([(o, {"text": "x" * 500}) for o in ops])
        store.begin_run("run_x", {})
        store.intend_shard(
            run_id="run_x",
            shard=0,
            attempt=1,
            endpoint="/v1/chat/completions",
            model="m",
            custom_ids=[o.key for o in ops[:5]],
        )
    damage(store_path)
    return store_path, {o.key for o in ops}


def test_check_finds_damage_and_names_the_recovery(
    damaged: tuple[Path, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``check`` on a damaged store exits 1 with the recover command."""
    path, _ = damaged
    assert 1 == inert("store", "check", "--store", str(path))
    assert f"inert store recover {path}" in one_line_error(capsys.readouterr().err)


def test_check_of_a_sound_store_says_so(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``check`` of a sound store exits 0."""
    assert 0 == inert("store", "check", "--store", str(filled))
    assert "no damage found" in capsys.readouterr().out


def test_recover_copies_every_readable_answer_and_the_journal(
    damaged: tuple[Path, set[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new store holds the answers off the damaged page and the journal; the old is unchanged."""
    path, keys = damaged
    before = path.read_bytes()
    new = tmp_path / "recovered.sqlite3"
    assert 0 == inert("store", "recover", str(path), str(new))
    assert "answers recovered" in capsys.readouterr().out
    assert before == path.read_bytes()
    with Store(new) as store:
        recovered = {a.key for a in store.answers()}
        assert [] == store.check()
        assert ["intended"] == [r.state for r in store.shards()]
        assert 5 == len(store.shard_custom_ids(store.shards()[0].id))
    assert recovered <= keys
    assert len(recovered) >= 0.9 * len(keys)


def test_recover_never_writes_over_an_existing_file(
    damaged: tuple[Path, set[str]], filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recovering into a path that exists is refused (exit 2) and the file is untouched."""
    path, _ = damaged
    other = filled.with_name("other.sqlite3")
    other.write_bytes(b"mine")
    assert 2 == inert("store", "recover", str(path), str(other))
    assert "already exists" in one_line_error(capsys.readouterr().err)
    assert b"mine" == other.read_bytes()
