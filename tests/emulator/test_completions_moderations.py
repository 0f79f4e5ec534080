"""Legacy completions and moderations: OpenAI's shapes, deterministic answers, validation."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types import ModerationMultiModalInputParam
from tests.billing import settled_ledger

from inert.emulator import Emulator


def test_completions_answer_each_prompt(client: openai.OpenAI, emu: Emulator) -> None:
    """One choice per prompt, text_completion object, usage totals, billed once."""
    completion = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=["Say hi", "Say bye"], max_tokens=200
    )
    assert ("text_completion", [0, 1]) == (completion.object, [c.index for c in completion.choices])
    assert {"stop"} == {c.finish_reason for c in completion.choices}
    assert completion.usage is not None
    assert 2 + 2 == completion.usage.prompt_tokens  # two texts of 6 and 7 characters
    total = completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert total == completion.usage.total_tokens
    assert 1 == settled_ledger(emu).total_billed()


def test_completions_default_to_sixteen_tokens(client: openai.OpenAI) -> None:
    """Without max_tokens an answer is cut at OpenAI's default of 16 tokens."""
    cut = [
        c.finish_reason
        for i in range(10)
        for c in client.completions.create(model="m", prompt=f"Tell {i}").choices
    ]
    assert "length" in cut
    long = client.completions.create(model="m", prompt="Tell 0", max_tokens=500)
    assert "stop" == long.choices[0].finish_reason


def test_token_prompts_count_their_length(client: openai.OpenAI) -> None:
    """A prompt of token ids counts one prompt token per id."""
    completion = client.completions.create(model="m", prompt=[1, 2, 3, 4, 5])
    assert completion.usage is not None
    assert 5 == completion.usage.prompt_tokens


def test_moderations_give_one_result_per_input(client: openai.OpenAI, emu: Emulator) -> None:
    """Each input gets every category; a category named in the text is flagged; it is recorded."""
    moderation = client.moderations.create(input=["a calm day", "a tale of violence"])
    assert "omni-moderation-latest" == moderation.model
    assert [False, True] == [r.flagged for r in moderation.results]
    flagged = moderation.results[1]
    assert flagged.categories.violence
    assert flagged.category_scores.violence > 0.5
    assert not flagged.categories.hate
    assert 1 == settled_ledger(emu).total_billed()


def test_image_parts_apply_to_image_categories(client: openai.OpenAI) -> None:
    """With an image part, image-capable categories list image among the applied input types."""
    parts: list[ModerationMultiModalInputParam] = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    moderation = client.moderations.create(model="omni-moderation-latest", input=parts)
    applied = moderation.results[0].category_applied_input_types
    assert ["text", "image"] == applied.violence
    assert ["text"] == applied.hate


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/completions", {"prompt": "x"}, "model"),
        ("/completions", {"model": "m"}, "prompt"),
        ("/completions", {"model": "m", "prompt": [{"x": 1}]}, "prompt"),
        ("/completions", {"model": "m", "prompt": "x", "n": 3}, "n"),
        ("/moderations", {}, "input"),
        ("/moderations", {"input": [{"type": "audio"}]}, "input"),
    ],
)
def test_malformed_requests_are_400s(
    client: openai.OpenAI, emu: Emulator, path: str, body: dict[str, Any], param: str
) -> None:
    """A malformed completions or moderations request is a 400 naming the parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(path, body=body, cast_to=object)
    assert param == caught.value.param
    assert 0 == settled_ledger(emu).total_billed()
