"""``inert demo`` end to end: the embedded emulator by default, a real endpoint only when named."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.billing import assert_billed_once

from inert.emulator import Emulator
from lexicon import load_sample
from lexicon_demo import build_parser, choose_words, main
from lexicon_demo._options import SAMPLE_WORDS

HEADINGS = ("rounds", "built", "dedup", "cached", "sent", "paid", "failed")
FAST = ["--time-scale", "0.05"]


def report_rows(output: str) -> dict[str, dict[str, int]]:
    """The report table's rows: run label → the whole-number columns by heading."""
    rows: dict[str, dict[str, int]] = {}
    for line in output.splitlines():
        label, _, rest = line.strip().partition("  ")
        numbers = rest.split()[: len(HEADINGS)]
        if label.startswith(("first, ", "again, ")) and len(numbers) == len(HEADINGS):
            rows[label] = dict(zip(HEADINGS, map(int, numbers), strict=True))
    return rows


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no key in the environment (a test that wants one sets it)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def guarded() -> Iterator[Emulator]:
    """A separate emulator that stands for a real endpoint: it requires the key 'right-key'."""
    with Emulator(api_key="right-key", time_scale=0.05) as emulator:
        yield emulator


def test_the_demo_runs_both_ways_then_serves_everything_from_the_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both runners take three rounds; the second run sends nothing and hits the store."""
    code = main(["--words", "3", *FAST, "--show", "1"])

    output = capsys.readouterr().out
    rows = report_rows(output)
    assert 0 == code
    assert ["first, immediate", "first, batch", "again, immediate", "again, batch"] == list(rows)
    assert 3 == rows["first, batch"]["rounds"]
    assert rows["first, batch"]["sent"] > 0
    assert rows["first, batch"]["sent"] == rows["first, batch"]["paid"]
    assert 0 == rows["first, batch"]["cached"]
    for label in ("again, immediate", "again, batch"):
        assert 0 == rows[label]["sent"]
        assert rows["first, batch"]["sent"] == rows[label]["cached"]
    assert re.search(r"\d+% saved, in 3 dependent rounds \(3 batch jobs\)", output)
    assert "second run: 0 calls sent" in output
    assert choose_words(3, 0)[0].word in output


def test_a_key_in_the_environment_does_not_leave_the_emulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With OPENAI_API_KEY and OPENAI_BASE_URL set, the demo still calls its emulator and says so."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-be-used")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there

    code = main(["--words", "1", "--runner", "immediate", "--show", "0", *FAST])

    output = capsys.readouterr().out
    assert 0 == code
    assert re.search(r"calls go to the embedded emulator at http://127\.0\.0\.1:\d+/v1", output)
    assert "OPENAI_API_KEY is set but not used" in output
    assert 0 == report_rows(output)["first, immediate"]["failed"]


def test_a_wrong_key_shows_the_401_text_and_exits_1(
    guarded: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rejected key fails every entry; the report gives the API's own 401 message."""
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")

    code = main(["--words", "2", "--base-url", guarded.base_url, "--yes", "--show", "0", *FAST])

    output = capsys.readouterr().out
    rows = report_rows(output)
    assert 1 == code
    assert f"calls go to {guarded.base_url}: a real endpoint" in output
    assert 2 == rows["first, immediate"]["failed"]
    assert 0 == rows["first, immediate"]["paid"]
    assert rows["first, immediate"]["sent"] > 0
    assert re.search(r"ApiError 401 ×2: HTTP 401 .*Incorrect API key provided", output)


def test_a_real_endpoint_is_estimated_and_needs_confirmation(
    guarded: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --yes and with no terminal to ask on, nothing is sent: one line, exit 2."""
    monkeypatch.setenv("OPENAI_API_KEY", "right-key")
    guarded.reset()

    code = main(["--words", "2", "--base-url", guarded.base_url])

    captured = capsys.readouterr()
    assert 2 == code
    assert re.search(r"this run sends about [\d,]+ calls, about \$\d+\.\d{4}", captured.out)
    assert 1 == len(captured.err.splitlines())
    assert "pass --yes to send" in captured.err
    assert_billed_once(guarded, [])


def test_a_second_demo_on_the_same_store_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running the demo again with the same --store answers every call from it."""
    store = str(tmp_path / "demo.sqlite")
    argv = ["--words", "2", "--runner", "batch", "--store", store, *FAST]
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


def test_a_single_word_is_not_plural(capsys: pytest.CaptureFixture[str]) -> None:
    """The header counts one word as "1 word"."""
    assert 0 == main(["--words", "1", "--runner", "immediate", "--show", "0", *FAST])
    assert "inert demo: 1 word with" in capsys.readouterr().out


def test_help_answers_without_loading_the_sdk() -> None:
    """``inert demo --help`` loads neither the SDK nor the emulator, so it answers at once."""
    code = (
        "import sys\n"
        "from lexicon_demo import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('openai', 'inert.emulator', 'starlette') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" == done.stdout.strip().splitlines()[-1]


def test_the_help_names_the_sample_size() -> None:
    """The size the options quote is the data set's."""
    assert len(load_sample()) == SAMPLE_WORDS
