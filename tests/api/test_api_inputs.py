"""Canonical inputs are validated once, by the gateway, before any vendor is called: one rule set for every
provider (contract section 2, "canonical input")."""

from __future__ import annotations

import json

import pytest

from gateway.inputs import DocumentInput, TextInput, parse_input
from gateway.plugins import get_providers

TEXT = {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["Hello"]}
TEXT_PROVIDERS = sorted(n for n, p in get_providers().items() if "text" in p.capabilities.input_kinds and p.sim_prefix)


async def _vendor_requests(demo) -> int:
    """Vendor requests every simulator has seen so far (control calls not counted)."""
    total = 0
    for provider in get_providers().values():
        if provider.sim_prefix:
            stats = await demo.sim(provider.sim_prefix, "/__sim__/stats")
            total += sum(stats["requests"].values())
    return total


async def _refused(demo, body: dict) -> dict:
    before = await _vendor_requests(demo)
    status, problem, _ = await demo.call("POST", "/v1/jobs", json=body)
    assert status == 422 and problem["code"] == "validation_error", problem
    assert await _vendor_requests(demo) == before, "a refused input reached a vendor"
    return problem


def test_there_are_several_text_providers_to_compare():
    assert {"camb", "segment_qa"} <= set(TEXT_PROVIDERS)


@pytest.mark.parametrize("provider", TEXT_PROVIDERS)
@pytest.mark.parametrize("blank", ["", "  ", "\t\n", "\u3000"])
async def test_a_blank_text_is_refused_with_the_same_422_by_every_text_provider(demo, provider, blank):
    problem = await _refused(demo, {"provider": provider, "input": {**TEXT, "texts": ["Hello", blank]}})
    assert problem["errors"] == [{"loc": ["body", "input", "texts", 1], "msg": "must not be empty or only whitespace"}]


async def test_a_blank_text_on_a_route_is_refused_before_any_provider(demo):
    problem = await _refused(demo, {"route": "text", "input": {**TEXT, "texts": ["  "]}})
    assert problem["errors"][0]["loc"] == ["body", "input", "texts", 0]


@pytest.mark.parametrize("provider", TEXT_PROVIDERS)
async def test_a_lone_surrogate_is_refused_before_the_vendor(demo, provider):
    raw = json.dumps({"provider": provider, "input": {**TEXT, "texts": ["ok"]}}).replace('"ok"', '"\\ud800"')
    before = await _vendor_requests(demo)
    status, problem, _ = await demo.call("POST", "/v1/jobs", data=raw, headers={"Content-Type": "application/json"})
    assert status == 422 and problem["errors"][0]["loc"] == ["body", "input", "texts", 0], problem
    assert await _vendor_requests(demo) == before


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"texts": []}, ["body", "input", "texts"]),
        ({"texts": "Hello"}, ["body", "input", "texts"]),
        ({"texts": ["Hello", 7]}, ["body", "input", "texts", 1]),
        ({"source_language": "  "}, ["body", "input", "source_language"]),
        ({"target_language": "english please"}, ["body", "input", "target_language"]),
        ({"kind": "video"}, ["body", "input", "kind"]),
        ({"extra": True}, ["body", "input", "extra"]),
    ],
)
async def test_malformed_text_inputs_are_refused_at_their_field(demo, change, loc):
    problem = await _refused(demo, {"provider": "camb", "input": {**TEXT, **change}})
    assert problem["errors"][0]["loc"] == loc, problem


async def test_an_input_kind_the_provider_does_not_take_is_refused_at_kind(demo):
    document = {"kind": "document", "source_language": "en", "target_language": "de", "filename": "a.pdf"}
    problem = await _refused(demo, {"provider": "camb", "input": {**document, "content_base64": "JVBERi0="}})
    assert problem["errors"][0]["loc"] == ["body", "input", "kind"]
    assert "'document' input is not taken here" in problem["errors"][0]["msg"]
    problem = await _refused(demo, {"provider": "datafold", "input": TEXT})
    assert problem["errors"][0]["loc"] == ["body", "input", "kind"]


async def test_a_valid_text_input_reaches_each_text_provider(demo):
    for provider in TEXT_PROVIDERS:
        job = await demo.submit(provider, TEXT)
        assert job["provider"] == provider and job["state"] == "queued"


def test_providers_receive_the_typed_model():
    text = parse_input(TEXT)
    assert isinstance(text, TextInput) and text.texts == ["Hello"]
    assert parse_input(text) is text  # given back as it is
    document = parse_input(
        {
            "kind": "document",
            "source_language": "en",
            "target_language": "de",
            "filename": "a.txt",
            "content_base64": "aGk=",
        }
    )
    assert isinstance(document, DocumentInput) and document.content == b"hi"
    native = {"texts": ["  "], "source_language": 1}
    assert parse_input(native) is native  # the vendor's own body: the provider (and vendor) judge it
