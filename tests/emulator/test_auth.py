"""Authentication: bearer keys like OpenAI's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from inert.emulator import Emulator

MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def guarded() -> Iterator[Emulator]:
    """An emulator that requires the key 'right-key'."""
    with Emulator(api_key="right-key") as emulator:
        yield emulator


def test_any_key_is_accepted_by_default(emu: Emulator) -> None:
    """Without a configured key, any bearer key is accepted."""
    with openai.OpenAI(base_url=emu.base_url, api_key="whatever", max_retries=0) as sdk:
        assert "chat.completion" == sdk.chat.completions.create(model="m", messages=MESSAGES).object


def test_missing_key_is_a_401(client: openai.OpenAI) -> None:
    """A request with no Authorization header is a 401 with code invalid_api_key."""
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"Authorization": openai.omit}
        )
    assert "invalid_api_key" == caught.value.code


def test_wrong_key_is_a_401_that_does_not_echo_it(guarded: Emulator) -> None:
    """With a required key, a wrong key is a 401 whose message does not repeat the key."""
    with (
        openai.OpenAI(base_url=guarded.base_url, api_key="wrong-key", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert "invalid_api_key" == caught.value.code
    assert "wrong-key" not in str(caught.value)


def test_required_key_is_accepted(guarded: Emulator) -> None:
    """With a required key, that key is accepted."""
    with openai.OpenAI(base_url=guarded.base_url, api_key="right-key", max_retries=0) as sdk:
        assert "m" == sdk.chat.completions.create(model="m", messages=MESSAGES).model
