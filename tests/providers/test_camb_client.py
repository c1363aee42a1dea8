"""The CAMB.AI provider's I/O against its live simulator, and its pure helpers (refs, language matching)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.errors import (
    InputError,
    VendorConflict,
    VendorMalformed,
    VendorNotFound,
    VendorServerError,
    VendorValidationError,
)
from gateway.states import State
from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorFactory, VendorHarness
from gateway.vendor_http import VendorConnection
from providers.camb.client import LANGUAGES_CACHE_KEY, CambConfig, CambProvider, LanguageTable
from providers.camb.models import CambLanguage
from providers.camb.simulator import FINISH_STEP, CambSimulator
from support.refusals import refused_before_sending
from support.scripted import ScriptedVendor

NATIVE = {"source_language": 1, "target_language": 31, "texts": ["Hello world", "How are you?"]}
CANONICAL = {"kind": "text", "source_language": "en-US", "target_language": "de-DE", "texts": ["Hello", "Bye"]}

provider = CambProvider()


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("camb", step_s=1.0)


# -- submit -------------------------------------------------------------------------------------


async def test_submit_native(conn: VendorConnection, sim: CambSimulator) -> None:
    ref = await provider.submit(conn, dict(NATIVE, formality=1, gender=9, age=30))
    assert set(ref) == {"task_id"}
    job = sim.jobs[ref["task_id"]]
    assert job.private["texts"] == NATIVE["texts"]
    assert job.private["target"] == "de-de"
    assert sim.stats["POST /translate"] == 1
    assert "GET /source-languages" not in sim.stats  # native ids need no lookup


def test_auth_header_and_config() -> None:
    assert provider.auth_headers("k") == {"x-api-key": "k"}
    assert provider.auth_headers(None) == {}
    assert CambProvider.config_model is CambConfig
    assert provider.capabilities.input_kinds == ["native", "text"]
    assert (provider.capabilities.cancel, provider.capabilities.artifact, provider.capabilities.progress) == (
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("source", "target", "source_id", "target_id", "target_short"),
    [
        ("en-US", "de-DE", 1, 31, "de-de"),
        ("EN-us", "de", 1, 31, "de-de"),
        ("en_GB", "de-AT", 2, 31, "de-de"),  # de-AT: the only German is de-de
        ("fr", "ja", 76, 96, "ja-jp"),  # only fr-fr is a source language
        ("ja-JP", "ar", 96, 145, "ar-sa"),  # ar-sa is target-only
        ("zh-Hans-CN", "pt-BR", 139, 113, "pt-br"),
    ],
)
async def test_submit_canonical_maps_codes_to_ids(
    conn: VendorConnection,
    sim: CambSimulator,
    source: str,
    target: str,
    source_id: int,
    target_id: int,
    target_short: str,
) -> None:
    seen: list[Any] = []
    original = conn.request_json

    async def spy(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        seen.append((method, path, kw.get("json_body")))
        return await original(method, path, **kw)

    conn.request_json = spy  # type: ignore[method-assign]
    ref = await provider.submit(conn, dict(CANONICAL, source_language=source, target_language=target))
    posted = [body for method, path, body in seen if (method, path) == ("POST", "/translate")]
    assert posted == [{"source_language": source_id, "target_language": target_id, "texts": ["Hello", "Bye"]}]
    assert sim.jobs[ref["task_id"]].private["target"] == target_short


@pytest.mark.parametrize(
    ("changes", "loc", "fragment"),
    [
        ({"source_language": "xx-YY"}, ["input", "source_language"], "not a language"),
        ({"source_language": "ar"}, ["input", "source_language"], "not a language"),  # target-only
        ({"target_language": "klingon"}, ["input", "target_language"], "not a language"),
        ({"source_language": "es"}, ["input", "source_language"], "ambiguous"),  # es-es and es-mx
        ({"target_language": "en"}, ["input", "target_language"], "ambiguous"),
        ({"target_language": "fr"}, ["input", "target_language"], "ambiguous"),  # fr-fr and fr-ca as targets
    ],
)
async def test_canonical_unknown_or_ambiguous_language(
    conn: VendorConnection, sim: CambSimulator, changes: dict[str, Any], loc: list[str], fragment: str
) -> None:
    with pytest.raises(InputError) as info:
        await provider.submit(conn, {**CANONICAL, **changes})
    assert info.value.errors[0]["loc"] == loc
    assert fragment in info.value.errors[0]["msg"]
    assert "POST /translate" not in sim.stats


async def test_language_lists_fetched_once_per_connection(
    conn: VendorConnection, harness: VendorHarness, sim: CambSimulator
) -> None:
    await provider.submit(conn, CANONICAL)
    await provider.submit(conn, dict(CANONICAL, target_language="fr-FR"))
    assert sim.stats["GET /source-languages"] == 1
    assert sim.stats["GET /target-languages"] == 1
    assert LANGUAGES_CACHE_KEY in conn.cache
    await provider.submit(harness.connect(), CANONICAL)  # a new connection has its own cache
    assert sim.stats["GET /source-languages"] == 2


async def test_concurrent_callers_share_one_fetch(conn: VendorConnection, sim: CambSimulator) -> None:
    refs = await asyncio.gather(*(provider.submit(conn, CANONICAL) for _ in range(8)))
    assert len({ref["task_id"] for ref in refs}) == 8
    assert sim.stats["GET /source-languages"] == 1
    assert sim.stats["GET /target-languages"] == 1


async def test_failed_language_fetch_is_not_cached(
    conn: VendorConnection, harness: VendorHarness, sim: CambSimulator
) -> None:
    await harness.fault("http_500")
    with pytest.raises(VendorServerError):
        await provider.submit(conn, CANONICAL)
    await asyncio.sleep(0)
    assert LANGUAGES_CACHE_KEY not in conn.cache
    ref = await provider.submit(conn, CANONICAL)
    assert ref["task_id"] in sim.jobs


BAD_INPUTS = [
    ([], ["input"]),
    ("text", ["input"]),
    ({"kind": "document", "texts": ["x"]}, ["input", "kind"]),
    ({"kind": None}, ["input", "kind"]),
    ({k: v for k, v in NATIVE.items() if k != "texts"}, ["input", "texts"]),
    ({**NATIVE, "texts": "Hello"}, ["input", "texts"]),
    ({**NATIVE, "texts": []}, ["input", "texts"]),
    ({**NATIVE, "texts": ["ok", None]}, ["input", "texts", 1]),
    ({k: v for k, v in NATIVE.items() if k != "source_language"}, ["input", "source_language"]),
    ({**NATIVE, "source_language": "en-us"}, ["input", "source_language"]),
    ({**NATIVE, "target_language": True}, ["input", "target_language"]),
    ({**NATIVE, "formality": "formal"}, ["input", "formality"]),
    ({**NATIVE, "age": 3.5}, ["input", "age"]),
    ({**CANONICAL, "texts": None}, ["input", "texts"]),
    ({**CANONICAL, "texts": [1]}, ["input", "texts", 0]),
    ({**CANONICAL, "source_language": 1}, ["input", "source_language"]),
    ({k: v for k, v in CANONICAL.items() if k != "target_language"}, ["input", "target_language"]),
    ({**CANONICAL, "target_language": "  "}, ["input", "target_language"]),
]


@pytest.mark.parametrize(("bad", "loc"), BAD_INPUTS, ids=repr)
async def test_input_errors_before_any_request(harness: VendorHarness, bad: Any, loc: list[Any]) -> None:
    await refused_before_sending(harness, lambda: provider.submit(harness.conn, bad), loc)


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"target_language": 999999}, ["input", "target_language"]),
        ({"source_language": 145}, ["input", "source_language"]),
        ({"formality": 3}, ["input", "formality"]),
        ({"gender": 4}, ["input", "gender"]),
    ],
)
async def test_vendor_validation_error_with_detail(
    conn: VendorConnection, changes: dict[str, Any], loc: list[str]
) -> None:
    with pytest.raises(VendorValidationError) as info:
        await provider.submit(conn, {**NATIVE, **changes})
    exc = info.value
    assert exc.status == 422 and exc.provider == "camb"
    assert exc.errors[0]["loc"] == loc
    assert exc.errors[0]["msg"]
    assert exc.errors[0]["msg"] in exc.message
    assert exc.problem_code == "validation_error"


# -- status, refs and results --------------------------------------------------------------------


async def test_status_progression_refine_and_result(conn: VendorConnection, clock: FakeClock) -> None:
    ref = await provider.submit(conn, NATIVE)
    body = await provider.fetch_status(conn, ref)
    assert body == {"status": "PENDING", "run_id": None}
    status = provider.normalize(body)
    assert (status.state, status.vendor_status, status.progress) == (State.RUNNING, "PENDING", None)
    assert provider.refine_ref(ref, body) == ref

    await clock.advance(FINISH_STEP)
    body = await provider.fetch_status(conn, ref)
    assert provider.normalize(body).state is State.SUCCEEDED
    refined = provider.refine_ref(ref, body)
    assert refined == {"task_id": ref["task_id"], "run_id": body["run_id"]}
    assert isinstance(refined["run_id"], int)
    assert ref == {"task_id": ref["task_id"]}  # the given ref is not mutated

    parts = await provider.fetch_result(conn, refined, body)
    assert [(o.name, o.source, o.target) for o in parts.outputs] == [
        ("0", None, "[de] Hello world"),
        ("1", None, "[de] How are you?"),
    ]
    assert parts.vendor == {"texts": ["[de] Hello world", "[de] How are you?"]}
    assert parts.issues == [] and parts.usage is None and parts.has_artifact is False


async def test_result_run_id_from_status_body_or_refetched(
    conn: VendorConnection, clock: FakeClock, sim: CambSimulator
) -> None:
    ref = await provider.submit(conn, NATIVE)
    await clock.advance(FINISH_STEP)
    body = await provider.fetch_status(conn, ref)
    before = sim.stats["GET /translate/{task_id}"]
    parts = await provider.fetch_result(conn, ref, body)  # run_id only in the status body
    assert len(parts.outputs) == 2
    assert sim.stats["GET /translate/{task_id}"] == before
    parts = await provider.fetch_result(conn, ref, None)  # nowhere: the status is read again
    assert [o.target for o in parts.outputs] == ["[de] Hello world", "[de] How are you?"]
    assert sim.stats["GET /translate/{task_id}"] == before + 1


async def test_result_before_success_is_a_conflict(conn: VendorConnection) -> None:
    ref = await provider.submit(conn, NATIVE)
    with pytest.raises(VendorConflict):
        await provider.fetch_result(conn, ref, {"status": "PENDING", "run_id": None})


@pytest.mark.parametrize(
    ("patch", "state", "code"),
    [
        ({"status": "PENDING", "run_id": None}, State.RUNNING, None),
        ({"status": "SUCCESS", "run_id": 515151}, State.SUCCEEDED, None),
        ({"status": "ERROR", "run_id": None}, State.FAILED, "vendor_error"),
        ({"status": "TIMEOUT", "run_id": None}, State.FAILED, "timeout"),
        ({"status": "PAYMENT_REQUIRED", "run_id": None}, State.FAILED, "payment_required"),
    ],
)
async def test_forced_statuses_normalize(
    conn: VendorConnection,
    harness: VendorHarness,
    patch: dict[str, Any],
    state: State,
    code: str | None,
) -> None:
    ref = await provider.submit(conn, NATIVE)
    await harness.force(ref["task_id"], patch)
    status = provider.normalize(await provider.fetch_status(conn, ref))
    assert status.state is state
    assert (status.error.code if status.error else None) == code


async def test_failure_marker_ends_failed(conn: VendorConnection, clock: FakeClock) -> None:
    ref = await provider.submit(conn, dict(NATIVE, texts=["FAIL_PAYMENT please"]))
    await clock.advance(FINISH_STEP)
    body = await provider.fetch_status(conn, ref)
    status = provider.normalize(body)
    assert status.state is State.FAILED and status.error is not None
    assert status.error.code == "payment_required" and status.error.retryable is False
    assert provider.refine_ref(ref, body) == ref


# -- typed vendor errors -------------------------------------------------------------------------


async def test_unknown_run_id_is_not_found(conn: VendorConnection) -> None:
    with pytest.raises(VendorNotFound):
        await provider.fetch_result(conn, {"task_id": "x", "run_id": 123}, None)


async def test_malformed_language_list(harness: VendorHarness) -> None:
    await harness.fault("malformed_json")
    with pytest.raises(VendorMalformed):
        await provider.submit(harness.conn, CANONICAL)


@pytest.mark.parametrize("run_id", ["../../etc/passwd", "a/b", "..", 1.5, True, ["1"]], ids=repr)
async def test_hostile_run_ids_send_nothing(harness: VendorHarness, run_id: Any) -> None:
    ref = {"task_id": "t", "run_id": run_id}  # hostile task ids: test_vendor_faults.py
    await refused_before_sending(harness, lambda: provider.fetch_result(harness.conn, ref, None))


async def test_non_dict_ref_is_input_error(conn: VendorConnection) -> None:
    with pytest.raises(InputError):
        await provider.fetch_status(conn, "task")  # type: ignore[arg-type]


# -- a vendor that answers strangely ------------------------------------------------------------


@pytest.fixture
def odd_vendor(scripted: ScriptedVendor, harness: VendorHarness) -> Callable[[Any, Any, Any], VendorConnection]:
    """`odd_vendor(create, status, result)`: a connection to a vendor answering task `t` and run 5 with these
    bodies (the language lists with `result` too)."""

    def make(create: Any, status: Any, result: Any) -> VendorConnection:
        scripted.on("POST", "/translate", 200, create)
        scripted.on("GET", "/translate/t", 200, status)
        for path in ("/translation-result/5", "/source-languages", "/target-languages"):
            scripted.on("GET", path, 200, result)
        return harness.connect(base_url=scripted.url)

    return make


@pytest.mark.parametrize("create", [{}, {"task_id": None}, {"task_id": ""}, {"task_id": "../x"}, [], "id", 7])
async def test_create_answer_without_usable_task_id(odd_vendor: Any, create: Any) -> None:
    conn = odd_vendor(create, None, None)
    with pytest.raises(VendorMalformed):
        await provider.submit(conn, NATIVE)


@pytest.mark.parametrize("result", [{}, {"texts": None}, {"texts": "x"}, [], "x", None])
async def test_result_without_texts_list(odd_vendor: Any, result: Any) -> None:
    conn = odd_vendor(None, None, result)
    with pytest.raises(VendorMalformed):
        await provider.fetch_result(conn, {"task_id": "t", "run_id": 5}, None)


async def test_result_with_a_bad_item_keeps_order(odd_vendor: Any) -> None:
    conn = odd_vendor(None, None, {"texts": ["a", None, "c", 4]})
    parts = await provider.fetch_result(conn, {"task_id": "t", "run_id": 5}, None)
    assert [(o.name, o.target) for o in parts.outputs] == [("0", "a"), ("1", None), ("2", "c"), ("3", None)]
    assert [(i.code, i.target) for i in parts.issues] == [("invalid_translation", "1"), ("invalid_translation", "3")]


async def test_success_without_run_id_is_malformed(odd_vendor: Any) -> None:
    conn = odd_vendor(None, {"status": "SUCCESS", "run_id": None}, {"texts": []})
    with pytest.raises(VendorMalformed):
        await provider.fetch_result(conn, {"task_id": "t"}, {"status": "SUCCESS"})


@pytest.mark.parametrize("lists", [{"not": "a list"}, "x", None])
async def test_language_list_not_a_list(odd_vendor: Any, lists: Any) -> None:
    conn = odd_vendor(None, None, lists)
    with pytest.raises(VendorMalformed):
        await provider.submit(conn, CANONICAL)


async def test_language_list_with_junk_items(odd_vendor: Any) -> None:
    junk = [
        None,
        3,
        {"id": "x", "short_name": "en-us"},
        {"id": True, "short_name": "de-de"},
        {"id": 7},
        {"id": 31, "language": "German", "short_name": "DE-de"},
        {"id": 1, "short_name": "en-us", "extra": 1},
    ]
    conn = odd_vendor({"task_id": "t-1"}, None, junk)
    seen: list[Any] = []
    original = conn.request_json

    async def spy(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        seen.append(kw.get("json_body"))
        return await original(method, path, **kw)

    conn.request_json = spy  # type: ignore[method-assign]
    assert await provider.submit(conn, CANONICAL) == {"task_id": "t-1"}
    assert seen[-1] == {"source_language": 1, "target_language": 31, "texts": ["Hello", "Bye"]}


# -- pure helpers --------------------------------------------------------------------------------


def table(*short_names: str) -> LanguageTable:
    return LanguageTable(CambLanguage(id=i + 1, language=s, short_name=s) for i, s in enumerate(short_names))


@pytest.mark.parametrize(
    ("names", "code", "expected"),
    [
        (("en-us", "de-de"), "en-us", 1),
        (("en-us", "de-de"), "EN-US", 1),
        (("en-us", "de-de"), "en_US", 1),
        (("en-us", "de-de"), "de", 2),
        (("en-us", "de-de"), "de-CH", 2),
        (("de", "de-at"), "de-DE", 1),  # the primary subtag as an exact short name wins
        (("de", "de-at"), "de-AT", 2),  # but an exact match comes first
        (("pt-br", "pt-pt"), "pt-PT", 2),
    ],
)
def test_language_resolution(names: tuple[str, ...], code: str, expected: int) -> None:
    assert table(*names).resolve(code) == expected


@pytest.mark.parametrize(
    ("names", "code"), [(("pt-br", "pt-pt"), "pt"), (("pt-br", "pt-pt"), "pt-AO"), (("en-us",), "fr"), ((), "en")]
)
def test_language_resolution_fails(names: tuple[str, ...], code: str) -> None:
    with pytest.raises(LookupError):
        table(*names).resolve(code)


def test_validate_ref() -> None:
    assert provider.validate_ref({"task_id": "abc-1"}) == {"task_id": "abc-1"}
    assert provider.validate_ref({"task_id": "abc-1", "run_id": 7, "other": 1}) == {"task_id": "abc-1", "run_id": 7}
    assert provider.validate_ref({"task_id": "abc-1", "run_id": None}) == {"task_id": "abc-1"}
    for bad in [None, [], {}, {"task_id": 5}, {"task_id": ""}, {"task_id": "a/b"}, {"task_id": "a", "run_id": "../"}]:
        with pytest.raises(InputError):
            provider.validate_ref(bad)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "SUCCESS", "run_id": 42}, {"task_id": "t", "run_id": 42}),
        ({"status": "SUCCESS", "run_id": "42"}, {"task_id": "t", "run_id": "42"}),
        ({"status": "PENDING", "run_id": None}, {"task_id": "t"}),
        ({"status": "SUCCESS", "run_id": True}, {"task_id": "t"}),
        ({"status": "SUCCESS", "run_id": "../x"}, {"task_id": "t"}),
        ({"status": "SUCCESS", "run_id": 4.2}, {"task_id": "t"}),
        ({"status": "SUCCESS"}, {"task_id": "t"}),
        (None, {"task_id": "t"}),
        ([{"run_id": 1}], {"task_id": "t"}),
        ("SUCCESS", {"task_id": "t"}),
    ],
    ids=repr,
)
def test_refine_ref(body: Any, expected: dict[str, Any]) -> None:
    assert provider.refine_ref({"task_id": "t"}, body) == expected
