"""The lexicon's response models, prompt templates and shipped data set."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import pytest
from openai.lib import type_to_response_format_param
from pydantic import BaseModel
from tests.lexicon._lexicon_support import SchemaResponder, prompt_of

import lexicon
from inert.testing import FakeRunner
from lexicon import Lexicon, ProviderDefinition, load_sample
from lexicon.connector import TEMPLATE_NAMES, load_templates
from lexicon.models import RESPONSE_MODELS, MeaningCluster


def objects_in(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every object schema inside ``schema`` ($defs included)."""
    if schema.get("type") == "object":
        yield schema
    for value in schema.values():
        if isinstance(value, Mapping):
            yield from objects_in(value)


@pytest.mark.parametrize("model", RESPONSE_MODELS, ids=lambda m: m.__name__)
def test_every_response_model_is_a_strict_schema(model: type[BaseModel]) -> None:
    """The SDK turns each model into a strict schema: closed objects, every field required."""
    param: Any = type_to_response_format_param(model)
    schema = param["json_schema"]["schema"]

    assert param["json_schema"]["strict"] is True
    for node in objects_in(schema):
        assert node["additionalProperties"] is False
        assert sorted(node["properties"]) == sorted(node["required"])
        assert all("default" not in sub for sub in node["properties"].values())


def test_every_connector_method_has_its_own_template() -> None:
    """One template per method, each read from package data, none empty."""
    templates = load_templates()

    assert set(TEMPLATE_NAMES) == set(templates)
    folder = files("lexicon").joinpath("prompts")
    shipped = {p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt")}
    assert set(TEMPLATE_NAMES) == shipped


def test_rendered_prompts_leave_no_placeholder_and_name_their_inputs() -> None:
    """Every method's prompt fills every placeholder and names the word it is about."""
    lex = Lexicon()
    cluster = MeaningCluster(
        id="slope", part_of_speech="noun", gloss="land by a river", source_definition_indexes=[0]
    )
    definition = ProviderDefinition(part_of_speech="noun", text="sloping land", examples=("x",))
    requests = [
        lex.clusters("bank", [definition]),
        lex.define("bank", cluster, [definition]),
        lex.synonyms("bank", "noun", "sloping land"),
        lex.antonyms("bank", "noun", "sloping land"),
        lex.examples("bank", "noun", "sloping land"),
        lex.usage_notes("bank", "noun", "sloping land"),
        lex.word_forms("bank", "noun"),
        lex.facts("bank"),
        lex.pronunciation("bank"),
        lex.register_domain("sloping land"),
    ]
    fake = FakeRunner(SchemaResponder())

    fake.run_all_sync(requests)

    prompts = [prompt_of(op) for op in fake.calls]
    assert len(TEMPLATE_NAMES) == len(prompts)
    assert [p for p in prompts if re.search(r"\$\w", p)] == []
    assert [p for p in prompts[:-1] if '"bank"' not in p] == []
    assert "sloping land" in prompts[-1]
    assert "bank" not in prompts[-1]


def test_the_sample_data_set_holds_300_words_with_several_definitions() -> None:
    """The shipped WordNet extract has 300 distinct words, each with 3 to 8 definitions."""
    words = load_sample()

    assert len(words) == 300
    assert len({w.word for w in words}) == 300
    assert all(3 <= len(w.definitions) <= 8 for w in words)
    assert all(d.text for w in words for d in w.definitions)
    assert sum(len(d.examples) for w in words for d in w.definitions) > 1000


def test_the_wordnet_licence_ships_beside_the_data() -> None:
    """WordNet's licence requires its notice on every copy; it is package data too."""
    folder = files("lexicon").joinpath("data")

    notice = folder.joinpath("WORDNET-LICENSE").read_text(encoding="utf-8")

    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert folder.joinpath("words.json").is_file()


def test_public_names_are_exactly_all() -> None:
    """``lexicon.__all__`` lists the public names the package exports, sorted."""
    public = {
        name
        for name, value in vars(lexicon).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert sorted(lexicon.__all__) == lexicon.__all__
    assert set(lexicon.__all__) == public
