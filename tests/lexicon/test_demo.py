"""``inert demo`` end to end against the embedded emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lexicon.demo import build_parser, choose_words, main

HEADINGS = ("rounds", "built", "dedup", "sent", "cached", "failed")


def report_rows(output: str) -> dict[str, dict[str, int]]:
    """The report table's rows: run label → the whole-number columns by heading."""
    rows: dict[str, dict[str, int]] = {}
    for line in output.splitlines():
        label, _, rest = line.strip().partition("  ")
        if label.startswith(("first, ", "again, ")):
            numbers = rest.split()[: len(HEADINGS)]
            rows[label] = dict(zip(HEADINGS, map(int, numbers), strict=True))
    return rows


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key in the environment the demo uses its embedded emulator."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_the_demo_runs_both_ways_then_serves_everything_from_the_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both runners take three rounds; the second run sends nothing and hits the store."""
    code = main(["--words", "3", "--time-scale", "0.05", "--show", "1"])

    output = capsys.readouterr().out
    rows = report_rows(output)
    assert 0 == code
    assert ["first, immediate", "first, batch", "again, immediate", "again, batch"] == list(rows)
    assert 3 == rows["first, batch"]["rounds"]
    assert rows["first, batch"]["sent"] > 0
    assert 0 == rows["first, batch"]["cached"]
    for label in ("again, immediate", "again, batch"):
        assert 0 == rows[label]["sent"]
        assert rows["first, batch"]["sent"] == rows[label]["cached"]
    assert re.search(r"\d+% saved, in 3 dependent rounds \(3 batch jobs\)", output)
    assert "second run: 0 calls sent" in output
    assert choose_words(3, 0)[0].word in output


def test_a_second_demo_on_the_same_store_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running the demo again with the same --store answers every call from it."""
    store = str(tmp_path / "demo.sqlite")
    argv = ["--words", "2", "--runner", "batch", "--store", store, "--time-scale", "0.05"]
    assert 0 == main([*argv, "--show", "0"])
    first = report_rows(capsys.readouterr().out)

    assert 0 == main([*argv, "--show", "0"])
    second = report_rows(capsys.readouterr().out)

    assert first["first, batch"]["sent"] == second["first, batch"]["cached"]
    assert 0 == second["first, batch"]["sent"]


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """``inert demo --help`` names each option with an explanation."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    text = capsys.readouterr().out
    assert 0 == exit_info.value.code
    assert text.startswith("usage: inert demo")
    options = [a.option_strings[-1] for a in build_parser()._actions if a.option_strings]
    assert [] == [option for option in options if option not in text]


def test_words_outside_the_data_set_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--words 0`` is a usage error naming the allowed range."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--words", "0"])

    assert 2 == exit_info.value.code
    assert "--words must be between 1 and 300" in capsys.readouterr().err
