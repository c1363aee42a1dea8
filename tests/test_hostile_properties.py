"""A property of `gateway serve --demo` under hostile submit and attach bodies (hypothesis): arbitrary JSON, deep,
wide, unicode with lone surrogates and control characters, huge numbers, NaN and Infinity, in every place of a
body, never get a 500; every job one of them creates can be read and listed, and ends with the simulators.

Bounded for CI: a fixed number of examples, derandomized (the same bodies on every run), no example database.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.processes import start_gateway
from support.waiting import wait_until

KEY = "demo-key"
#: inputs each demo provider accepts; the generated bodies start from these and break them
VALID = {
    "camb": {"source_language": 1, "target_language": 31, "texts": ["Hello"]},
    "segment_qa": {"kind": "text", "source_language": "de", "target_language": "en", "texts": ["Guten Tag"]},
    "datafold": {"project_id": 1, "asset_paths": ["models/orders.sql"]},
    "doc_translator": {
        "kind": "document",
        "source_language": "en",
        "target_language": "de",
        "filename": "a.pdf",
        "content_base64": "JVBERi0xLjQK",
    },
}
#: examples per run (derandomized: the same ones every run); raise it locally to search further
EXAMPLES = int(os.environ.get("GATEWAY_HOSTILE_EXAMPLES", "200"))


# -- the bodies ---------------------------------------------------------------------------------------------------

#: any code point, lone surrogates and control characters included
HOSTILE_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
#: any code point UTF-8 can encode, control characters included
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**300, -(10**300), 2**63, -(2**63) - 1]),
)


def values(text: st.SearchStrategy[str], numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), numbers, text)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(text, inner, max_size=6)),
        max_leaves=30,
    )


HOSTILE = values(HOSTILE_TEXT, NUMBERS)
#: what a careful client could send: any text, finite numbers
TAME = values(TEXT, st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """JSON text of an arbitrary value, a deep one (written as text: too deep for json.dumps), or a wide one."""
    kind = draw(st.sampled_from(["hostile", "tame", "tame", "deep_object", "deep_array", "wide"]))
    if kind == "deep_object":
        levels = draw(st.integers(1, 5000))
        return '{"a":' * levels + json.dumps(draw(TEXT)) + "}" * levels
    if kind == "deep_array":
        levels = draw(st.integers(1, 5000))
        return "[" * levels + "]" * levels
    if kind == "wide":
        return json.dumps({f"k{i}": draw(st.one_of(NUMBERS, HOSTILE_TEXT)) for i in range(draw(st.integers(0, 400)))})
    return json.dumps(draw(HOSTILE if kind == "hostile" else TAME))


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str]:
    """(path, raw JSON body): a provider's valid body, left alone or broken in some places, or anything at all."""
    shape = draw(st.sampled_from(["submit", "submit", "submit", "attach", "anything"]))
    if shape == "anything":
        return "/v1/jobs", draw(json_text())
    provider = draw(st.sampled_from(sorted(VALID)))
    fields: dict[str, str] = {"provider": json.dumps(provider)}
    if shape == "attach":
        fields["vendor_ref"] = draw(json_text())
        path = "/v1/jobs/attach"
    else:
        data = dict(VALID[provider])
        if "texts" in data and draw(st.booleans()):
            data["texts"] = draw(st.lists(draw(st.sampled_from([TEXT, TEXT, HOSTILE_TEXT])), min_size=1, max_size=3))
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            data[draw(st.sampled_from([*data, "extra"]))] = draw(st.one_of(HOSTILE, TAME))
        fields["input"] = json.dumps(data) if draw(st.integers(0, 5)) else draw(json_text())
        path = "/v1/jobs"
    if draw(st.booleans()):
        fields["metadata"] = draw(json_text())
    if draw(st.integers(0, 9)) == 0:
        fields[draw(st.sampled_from(["route", "webhook_url", "extra"]))] = json.dumps(draw(st.one_of(NUMBERS, TEXT)))
    return path, "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


# -- the server ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """`gateway serve --demo` with simulators that finish jobs by themselves in a fraction of a second."""
    log = tmp_path_factory.mktemp("hostile") / "serve.log"
    env = {**os.environ, "TMPDIR": str(log.parent)}
    server = asyncio.run(start_gateway(["--demo", "--step", "0.05"], log, env=env))
    yield int(server.url.rsplit(":", 1)[1]), log
    server.stop()


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, ctype, json.loads(raw) if "json" in ctype else raw
    finally:
        conn.close()


# -- the property ---------------------------------------------------------------------------------------------------


def test_hostile_bodies_never_get_a_500_and_every_job_they_create_ends(gateway):
    port, log = gateway
    created: list[str] = []
    statuses: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=5000,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(bodies())
    def submit(request: tuple[str, str]) -> None:
        path, text = request
        status, ctype, answer = call(port, "POST", path, text.encode("utf-8", "surrogatepass"))
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (status, answer, text[:500])
        if status >= 400:
            assert ctype.startswith("application/problem+json") and answer["status"] == status, answer
            return
        assert status in (200, 201), answer
        got, _, job = call(port, "GET", f"/v1/jobs/{answer['id']}")
        assert got == 200 and job["id"] == answer["id"], job
        json.dumps(job, allow_nan=False).encode("utf-8")  # what is shown is finite, UTF-8 JSON
        created.append(answer["id"])

    submit()
    print("STATUSES", statuses, len(created))
    assert statuses.get(201, 0) > 0 and statuses.get(422, 0) > 0, statuses  # both sides were exercised
    listed: set[str] = set()
    cursor = ""
    while True:
        got, _, page = call(port, "GET", "/v1/jobs?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        assert got == 200, page
        listed |= {job["id"] for job in page["data"]}
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert set(created) <= listed
    waiting = set(created)

    def all_ended() -> bool:
        for job_id in sorted(waiting):
            got, _, job = call(port, "GET", f"/v1/jobs/{job_id}")
            assert got == 200, job
            if job["terminal"]:
                waiting.discard(job_id)
        return not waiting

    asyncio.run(wait_until(all_ended, within=60.0, what=f"every created job to end (left: {waiting})"))
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]
