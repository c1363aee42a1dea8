"""The operator dashboard (/ui) in a real browser: Debian's headless Chromium driven by Playwright. The page is
shut to tenant keys, shows every tenant's jobs and the providers' health once the operator key is given,
follows state changes live (no reload), filters, and shows a job's timeline and result; screenshots are saved
under the test's tmp dir.

Outside CI a machine without chromium skips this with the reason; under `make test` (which installs Debian's
chromium where it is missing, and sets GATEWAY_REQUIRE_BROWSER=1) or with CI=true it must run."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Locator, Page, async_playwright, expect

from gateway.plugins import get_providers
from gateway.server.run import DEMO_OPERATOR_KEY
from support.cases import load_case
from support.demo import Demo
from support.ports import refused_port
from support.waiting import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT = {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["Hello", "World"]}
DOCUMENT = {
    "kind": "document",
    "source_language": "en",
    "target_language": "de",
    "filename": "report.pdf",
    "content_base64": "JVBERi0xLjQKaGVsbG8gd29ybGQ=",
}


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    if not HAVE_CHROMIUM:
        reason = "Debian's chromium is not installed (make test installs it: apt-get install -y chromium)"
        if os.environ.get("CI") == "true" or os.environ.get("GATEWAY_REQUIRE_BROWSER") == "1":  # set by make test
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1360, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()


async def _vendor(demo: Demo, job: dict, patch: dict) -> None:
    case = load_case(job["provider"])
    prefix = get_providers()[job["provider"]].sim_prefix
    await demo.sim(prefix, f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state", patch)


async def _sign_in(page: Page, key: str) -> None:
    await page.fill("#key", key)
    await page.click("#login-form button[type=submit]")


def _row(page: Page, job_id: str) -> Locator:
    return page.locator(f'#jobs tr[data-job-id="{job_id}"]')


async def test_the_dashboard_follows_jobs_live_behind_the_operator_key(demo: Demo, browser: BrowserContext, tmp_path):
    base = str(demo.client.make_url("")).rstrip("/")
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(base + "/ui")

    # the gate: nothing but the sign-in form, and a tenant key does not open it
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#overview")).to_be_hidden()
    await _sign_in(page, "demo-key")
    await expect(page.locator("#login-error")).to_have_text("That is not an operator key.")
    await expect(page.locator("#overview")).to_be_hidden()
    await page.screenshot(path=str(tmp_path / "dashboard-gate.png"))

    mine = await demo.submit("camb", TEXT)
    theirs = await demo.submit("camb", TEXT, key="demo-key-b")
    await _sign_in(page, DEMO_OPERATOR_KEY)
    await expect(page.locator("#overview")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("live")
    await expect(page.locator("#providers article")).to_have_count(len(get_providers()))
    await expect(_row(page, mine["id"])).to_contain_text("demo")
    await expect(_row(page, theirs["id"])).to_contain_text("demo-b")  # every tenant's jobs
    await page.evaluate("window.__not_reloaded = true")

    # live: a new job appears and its state changes on the page, without a reload
    doc = await demo.submit("doc_translator", DOCUMENT)
    await expect(_row(page, doc["id"]).locator(".badge")).to_have_attribute("data-state", "running")
    await _vendor(demo, doc, {"status": "processing", "progress": 40})
    await expect(_row(page, doc["id"])).to_contain_text("40%")
    await _vendor(demo, mine, load_case("camb").finished_patch)
    await expect(_row(page, mine["id"]).locator(".badge")).to_have_attribute("data-state", "succeeded")
    assert await page.evaluate("window.__not_reloaded") is True
    camb = page.locator('#providers article[data-provider="camb"]')
    await expect(camb.locator(".breaker")).to_have_text("closed")
    await expect(camb).to_contain_text("succeeded")
    await page.screenshot(path=str(tmp_path / "dashboard-jobs.png"), full_page=True)

    # filters: by provider and by tenant
    await page.select_option("#f-provider", "doc_translator")
    await expect(page.locator("#jobs tr")).to_have_count(1)
    await page.select_option("#f-provider", "")
    await page.fill("#f-tenant", "demo-b")
    await page.press("#f-tenant", "Enter")
    await expect(page.locator("#jobs tr")).to_have_count(1)
    await expect(_row(page, theirs["id"])).to_be_visible()
    await page.fill("#f-tenant", "")
    await page.press("#f-tenant", "Enter")
    await expect(page.locator("#jobs tr")).to_have_count(3)

    # a finished job's page: its timeline and its result, each output beside its source
    await _row(page, mine["id"]).locator("a").click()
    await expect(page.locator("#job-id")).to_have_text(mine["id"])
    timeline = page.locator("#timeline li")
    await expect(timeline).to_have_count(3)
    assert [await li.get_attribute("data-state") for li in await timeline.all()] == ["queued", "running", "succeeded"]
    outputs = page.locator("table.outputs tbody tr")
    await expect(outputs).to_have_count(2)
    await expect(outputs.first).to_contain_text("Hello")
    await expect(outputs.first).to_contain_text("[de] Hello")

    # a running job's page follows it live too
    await page.goto(f"{base}/ui#/jobs/{doc['id']}")
    await expect(page.locator("#timeline li")).to_have_count(3)  # queued, running, 40 %
    await _vendor(demo, doc, load_case("doc_translator").finished_patch)
    await expect(page.locator("#timeline li").last).to_have_attribute("data-state", "succeeded")
    await expect(page.locator(".result")).to_contain_text("report")
    await page.screenshot(path=str(tmp_path / "dashboard-job.png"), full_page=True)

    # a job whose webhook receiver is down: its delivery log shows the failed tries
    with refused_port() as port:
        hooked = await demo.submit("camb", TEXT, webhook_url=f"http://127.0.0.1:{port}/hook")

        async def tried() -> bool:
            _, log, _ = await demo.call("GET", f"/v1/jobs/{hooked['id']}/deliveries")
            return bool(log["data"] and log["data"][0]["attempts"])

        await wait_until(tried, what="a failed webhook try")
        await page.goto(f"{base}/ui#/jobs/{hooked['id']}")
        first = page.locator("#deliveries tbody tr").first  # version 1, held until it is delivered
        await expect(first).to_have_attribute("data-state", "pending")
        await expect(first).to_contain_text("connection")
    await page.screenshot(path=str(tmp_path / "dashboard-deliveries.png"), full_page=True)

    await page.click("#signout")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#jobs tr")).to_have_count(0)
    assert errors == []
    if os.environ.get("GATEWAY_SCREENSHOTS"):  # to look at them: GATEWAY_SCREENSHOTS=/some/dir
        for shot in tmp_path.glob("dashboard-*.png"):
            shutil.copy(shot, os.environ["GATEWAY_SCREENSHOTS"])
