"""The operator API (/v1/operator) through HTTP: only an operator key opens it (never a tenant's, and an operator
key opens no tenant route), it sees every tenant, and a job's page carries its webhook deliveries."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.server.run import DEMO_OPERATOR_KEY, demo_config
from support.ports import refused_port
from support.waiting import wait_until

OPERATOR_ROUTES = ["/v1/operator/jobs", "/v1/operator/providers", "/v1/operator/jobs/job_000000000000000000000000"]
TEXT = {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["Hi"]}


@pytest.mark.parametrize("path", OPERATOR_ROUTES)
@pytest.mark.parametrize("key", [None, "demo-key", "demo-key-b", "wrong-key"])
async def test_operator_routes_refuse_every_key_but_the_operators(demo, path, key) -> None:
    status, body, headers = await demo.call("GET", path, key=key)
    assert status == 401 and body["code"] == "unauthorized" and "operator key" in body["detail"]
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_operator_key_opens_no_tenant_route(demo) -> None:
    status, body, _ = await demo.call("GET", "/v1/jobs", key=DEMO_OPERATOR_KEY)
    assert status == 401 and body["code"] == "unauthorized"


async def test_without_an_operator_key_configured_the_operator_routes_are_closed(new_demo) -> None:
    demo = await new_demo(operator={"keys": []})
    status, _, _ = await demo.call("GET", "/v1/operator/jobs", key=DEMO_OPERATOR_KEY)
    assert status == 401
    status, _, _ = await demo.call("GET", "/ui", key=None)
    assert status == 200  # the page itself holds no data; it asks for a key


def test_an_operator_key_that_is_a_tenant_key_is_refused_at_start() -> None:
    data = demo_config("http://127.0.0.1:9")
    data["operator"] = {"keys": ["demo-key"]}
    with pytest.raises(ConfigError, match="operator"):
        parse_config(data, source="test")


async def test_the_operator_sees_every_tenant_and_filters(demo) -> None:
    a = await demo.submit("camb", TEXT)
    b = await demo.submit("camb", TEXT, key="demo-key-b")
    status, page, _ = await demo.call("GET", "/v1/operator/jobs", key=DEMO_OPERATOR_KEY)
    assert status == 200 and [(j["id"], j["tenant"]) for j in page["data"]] == [(b["id"], "demo-b"), (a["id"], "demo")]
    status, page, _ = await demo.call("GET", "/v1/operator/jobs?tenant=demo&limit=1", key=DEMO_OPERATOR_KEY)
    assert [j["id"] for j in page["data"]] == [a["id"]] and page["next_cursor"] is None
    status, page, _ = await demo.call("GET", "/v1/operator/jobs?state=failed", key=DEMO_OPERATOR_KEY)
    assert page["data"] == []
    status, body, _ = await demo.call("GET", "/v1/operator/jobs?cursor=nonsense", key=DEMO_OPERATOR_KEY)
    assert status == 422 and body["errors"][0]["loc"] == ["query", "cursor"]


async def test_a_jobs_page_shows_its_failing_webhook_deliveries(demo) -> None:
    with refused_port() as port:
        job = await demo.submit("camb", TEXT, webhook_url=f"http://127.0.0.1:{port}/hook")

        async def tried() -> dict | None:
            _, detail, _ = await demo.call("GET", f"/v1/operator/jobs/{job['id']}", key=DEMO_OPERATOR_KEY)
            log = detail["deliveries"]["data"]
            return detail if log and log[0]["attempts"] else None

        detail = await wait_until(tried, what="a failed delivery attempt")
    log = detail["deliveries"]
    first = log["data"][0]
    assert first["version"] == 1 and first["state"] == "pending" and first["delivered_at"] is None
    assert first["attempts"][0]["error"] == "connection" and first["next_attempt_at"]
    assert log["webhook_url"] == f"http://127.0.0.1:{port}/hook" and log["endpoint"]["disabled"] is False
    assert detail["job"]["webhook_url"] == log["webhook_url"] and detail["result"] is None
    # the operator sees what the tenant sees in its own delivery log
    _, tenant_view, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/deliveries")
    assert tenant_view["data"][0]["attempts"][0] == first["attempts"][0]


def test_every_dashboard_file_is_installed_with_the_package() -> None:
    """pyproject's package data covers every file of gateway/ui (an install without them serves no page)."""
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    files = {p.relative_to(root / "gateway").as_posix() for p in (root / "gateway" / "ui").iterdir()}
    covered = {f for f in files if any(fnmatch.fnmatch(f, pattern) for pattern in patterns)}
    assert files and covered == files
