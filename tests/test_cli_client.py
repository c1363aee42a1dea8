"""The client commands as a user runs them: subprocesses against a running demo server (`gateway serve --demo
--port 0`, the port read from what it prints), the vendors' statuses driven through the simulators' control
API. Each way a job can end has its own exit code; `--json` is for scripts; a `wait` whose server restarts in
the middle still ends correctly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PDF = b"%PDF-1.4\n" + b"a small document " * 50


class Server:
    """A `gateway` process started by a test, with what it printed."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.out: IO[str] = open(log, "w")
        env = {**os.environ, "TMPDIR": str(log.parent)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], stdout=self.out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )

    def printed(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log.read_text())
            if found:
                return found
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"{pattern!r} not printed:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.out.close()


def start_gateway(log: Path, *extra: str) -> tuple[Server, str]:
    server = Server(["serve", "--demo", "--port", "0", *extra], log)
    url = server.printed(r"gateway listening on (http://127\.0\.0\.1:\d+)").group(1)
    return server, url


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A demo gateway whose simulators never move on their own (the tests say what the vendors report)."""
    server, url = start_gateway(tmp_path_factory.mktemp("cli") / "demo.log", "--step", "3600")
    sim = server.printed(r"simulators: (http://\S+)").group(1)
    yield {"url": url, "sim": sim}
    server.stop()


def cli(url: str, *args: str, key: str = "demo-key", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_URL": url, "GATEWAY_KEY": key, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def cli_started(url: str, *args: str, key: str = "demo-key") -> subprocess.Popen[str]:
    """A client command started in its own process, its output and errors piped back."""
    env = {**os.environ, "GATEWAY_URL": url, "GATEWAY_KEY": key, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def cli_all(url: str, *commands: list[str], key: str = "demo-key") -> list[subprocess.CompletedProcess[str]]:
    """Several commands at once (each its own process), their outcomes in order."""
    procs = [(args, cli_started(url, *args, key=key)) for args in commands]
    done = []
    for args, proc in procs:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def api_submit(url: str, provider: str, input: dict[str, Any]) -> dict[str, Any]:
    """A job submitted over HTTP (for tests about the other commands)."""
    request = urllib.request.Request(
        f"{url}/v1/jobs",
        data=json.dumps({"provider": provider, "input": input}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer demo-key"},
        method="POST",
    )
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def vendor(sim: str, prefix: str, vendor_job: str, patch: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{sim}{prefix}/__sim__/jobs/{vendor_job}/state",
        data=json.dumps(patch).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()


def submit_json(url: str, *args: str) -> dict[str, Any]:
    out = cli(url, "submit", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_submit_texts_wait_and_result_as_a_person_reads_them(demo) -> None:
    url, sim = demo["url"], demo["sim"]
    out = cli(url, "submit", "camb", "--from", "en-us", "--to", "de-de", "Hello", "World")
    assert out.returncode == 0, out.stderr
    job_id = re.search(r"submitted (job_[0-9a-f]{24}) to camb \(queued, v1\)", out.stdout).group(1)
    assert f"gateway wait {job_id}" in out.stdout
    status = json.loads(cli(url, "status", job_id, "--json").stdout)
    vendor(sim, "/camb/apis", status["vendor_ref"]["task_id"], {"status": "SUCCESS", "run_id": 7001})
    waited = cli(url, "wait", job_id, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    lines = waited.stdout.strip().splitlines()  # not a terminal: one plain line per version
    assert lines[-1].startswith(f"{job_id} ended succeeded after ")
    assert any(line.startswith(f"{job_id} succeeded vendor=SUCCESS") for line in lines)
    result = cli(url, "result", job_id)
    assert result.returncode == 0
    assert re.search(r"0\s+Hello\s+\[de\] Hello", result.stdout) and re.search(
        r"1\s+World\s+\[de\] World", result.stdout
    )
    as_json = json.loads(cli(url, "result", job_id, "--json").stdout)
    assert [(o["source"], o["target"]) for o in as_json["outputs"]] == [
        ("Hello", "[de] Hello"),
        ("World", "[de] World"),
    ]
    summary = cli(url, "status", job_id)
    assert f"{job_id}  camb  succeeded" in summary.stdout and "SUCCESS" in summary.stdout


ENDINGS = [  # provider, input, simulator prefix, vendor_ref key, what the vendor reports, state, exit code
    ("camb", "texts", "/camb/apis", "task_id", {"status": "SUCCESS", "run_id": 7002}, "succeeded", 0),
    (
        "segment_qa",
        "texts",
        "/segment-qa",
        "job_id",
        {"status": "needs_review", "warning": "check the tone", "current_step": None},
        "completed_with_issues",
        3,
    ),
    ("camb", "texts", "/camb/apis", "task_id", {"status": "ERROR"}, "failed", 4),
    ("datafold", "native", "/datafold", "job_id", {"status": "cancelled"}, "cancelled", 5),
]
TEXTS = {"kind": "text", "source_language": "de-de", "target_language": "en-us", "texts": ["Guten Tag", "Danke"]}


def test_wait_exits_with_a_code_for_each_ending(demo) -> None:
    url, sim = demo["url"], demo["sim"]
    jobs = []
    for provider, kind, prefix, ref_key, patch, _, _ in ENDINGS:
        job = api_submit(url, provider, TEXTS if kind == "texts" else {})
        vendor(sim, prefix, job["vendor_ref"][ref_key], patch)
        jobs.append(job)
    waits = cli_all(
        url,
        *([*cmd, job["id"], "--timeout", "30"] for job in jobs for cmd in (["wait"], ["wait", "--json"])),
    )
    for (*_, state, code), job, human, as_json in zip(ENDINGS, jobs, waits[::2], waits[1::2], strict=True):
        assert human.returncode == code, (state, human.stdout, human.stderr)
        assert f"{job['id']} ended {state}" in human.stdout
        assert as_json.returncode == code and json.loads(as_json.stdout)["state"] == state
    issues = waits[2].stdout
    assert "issue needs_review" in issues and "check the tone" in issues


def test_wait_gives_up_at_its_timeout_with_its_own_code(demo) -> None:
    job = submit_json(demo["url"], "camb", "--from", "en-us", "--to", "de-de", "Never finishes")
    waited = cli(demo["url"], "wait", job["id"], "--timeout", "1.5")
    assert waited.returncode == 6 and "gave up waiting" in waited.stderr and "running" in waited.stderr


def test_submit_wait_chains_both(demo) -> None:
    url, sim = demo["url"], demo["sim"]
    proc = cli_started(url, "submit", "camb", "--from", "en-us", "--to", "de-de", "Chained", "--wait")
    first = proc.stdout.readline()
    job_id = re.search(r"submitted (job_\w+) to camb", first).group(1)
    task = json.loads(cli(url, "status", job_id, "--json").stdout)["vendor_ref"]["task_id"]
    vendor(sim, "/camb/apis", task, {"status": "SUCCESS", "run_id": 7003})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith(f"{job_id} ended succeeded")


def test_a_document_is_submitted_from_a_file_and_its_artifact_saved(demo, tmp_path) -> None:
    url, sim = demo["url"], demo["sim"]
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF)
    job = submit_json(url, "doc_translator", "--from", "en", "--to", "de", str(report))
    assert job["provider"] == "doc_translator"
    early = cli(url, "artifact", job["id"], "-o", str(tmp_path / "early.pdf"))
    assert early.returncode == 1 and "409 not_ready" in early.stderr and not (tmp_path / "early.pdf").exists()
    vendor(sim, "/doc-translator", job["vendor_ref"]["job_id"], {"status": "completed", "progress": 100})
    assert cli(url, "wait", job["id"], "--timeout", "30").returncode == 0
    saved = cli(url, "artifact", job["id"], "-o", str(tmp_path / "translated.pdf"))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "translated.pdf").read_bytes().startswith(b"%PDF-")
    assert re.search(r"saved .*translated\.pdf \([\d,]+ bytes\)", saved.stdout)
    into = cli(url, "artifact", job["id"], "-o", str(tmp_path), "--json")
    info = json.loads(into.stdout)
    assert Path(info["path"]).parent == tmp_path and info["size"] == (tmp_path / "translated.pdf").stat().st_size
    result = cli(url, "result", job["id"])
    assert "output file:" in result.stdout and f"gateway artifact {job['id']}" in result.stdout


def test_list_cancel_attach_and_providers(demo) -> None:
    url = demo["url"]
    job = submit_json(url, "camb", "--from", "en-us", "--to", "de-de", "Listed")
    listed = cli(url, "list", "--provider", "camb", "--limit", "1")
    assert listed.returncode == 0 and job["id"] in listed.stdout and "more jobs: gateway list --all" in listed.stdout
    every = json.loads(cli(url, "list", "--all", "--limit", "2", "--json").stdout)
    assert job["id"] in [j["id"] for j in every["data"]] and every["next_cursor"] is None
    cancel = cli(url, "cancel", job["id"])
    assert cancel.returncode == 1 and "409 unsupported" in cancel.stderr
    attach = cli(url, "attach", "camb", json.dumps(job["vendor_ref"]), "--json")
    assert attach.returncode == 0 and json.loads(attach.stdout)["vendor_ref"]["task_id"] == job["vendor_ref"]["task_id"]
    providers = cli(url, "providers", "--remote")
    assert re.search(r"doc_translator\s+Document translator", providers.stdout)
    remote = json.loads(cli(url, "providers", "--remote", "--json").stdout)["providers"]
    assert {p["name"] for p in remote} >= {"camb", "datafold"}


def test_usage_tells_what_each_vendor_cost(demo) -> None:
    url = demo["url"]
    job = submit_json(url, "segment_qa", "--from", "de", "--to", "en", "Was kostet das?")
    patch = {"status": "completed", "cost_eur": 0.0123, "token_usage": {"input_tokens": 7, "output_tokens": 9}}
    vendor(demo["sim"], "/segment-qa", job["vendor_ref"]["job_id"], patch)
    assert cli(url, "wait", job["id"]).returncode == 0
    report = json.loads(cli(url, "usage", "--json").stdout)
    (qa,) = [g for g in report["groups"] if g["key"] == "segment_qa"]
    assert qa["jobs"]["succeeded"] >= 1 and qa["usage"]["cost"]["EUR"] >= 0.0123 and qa["usage"]["input_tokens"] >= 7
    table = cli(url, "usage", "--group-by", "provider")
    assert table.returncode == 0 and re.search(r"segment_qa .*EUR", table.stdout), table.stdout
    bad = cli(url, "usage", "--from", "yesterday")
    assert bad.returncode == 1 and "from" in bad.stderr


def test_errors_are_told_with_their_exit_codes(demo) -> None:
    url = demo["url"]
    missing, invalid, bad_json, no_languages = cli_all(
        url,
        ["status", "job_000000000000000000000000"],
        ["submit", "camb", "--from", "en-us", "--to", "de-de", " "],
        ["submit", "camb", "--input", "{nope"],
        ["submit", "camb", "Hello"],
    )
    assert missing.returncode == 1 and "HTTP 404 not_found" in missing.stderr
    assert invalid.returncode == 1 and "422 validation_error" in invalid.stderr and "input.texts" in invalid.stderr
    assert bad_json.returncode == 2 and "not JSON" in bad_json.stderr
    assert no_languages.returncode == 2 and "--from and --to" in no_languages.stderr
    (wrong,) = cli_all(url, ["status", "job_000000000000000000000000"], key="wrong-key")
    assert wrong.returncode == 1 and "HTTP 401 unauthorized" in wrong.stderr
    (away,) = cli_all("http://127.0.0.1:9", ["status", "job_000000000000000000000000"])
    assert away.returncode == 1 and "cannot reach" in away.stderr


def test_a_wait_survives_a_server_restart(tmp_path) -> None:
    """The gateway restarts (same store, same vendors) while `wait` follows a job: it resumes and ends right,
    showing every version once, in order."""
    simulators = Server(["simulate", "--port", "0", "--step", "3600"], tmp_path / "sim.log")
    sim = simulators.printed(r"simulators listening on (http://\S+)").group(1)
    store = f"sqlite://{tmp_path / 'gateway.db'}"
    first, url = start_gateway(tmp_path / "first.log", "--sim-url", sim, "--store", store)
    port = url.rsplit(":", 1)[1]
    second = None
    try:
        job = submit_json(url, "camb", "--from", "en-us", "--to", "de-de", "Across a restart")
        while json.loads(cli(url, "status", job["id"], "--json").stdout)["version"] < 2:
            time.sleep(0.1)  # the first poll: running (v2)
        waiting = cli_started(url, "wait", job["id"], "--timeout", "60")
        before = waiting.stdout.readline()
        assert " running vendor=PENDING " in before and " v2 " in before
        first.stop()  # SIGTERM: the gateway shuts down; the event stream ends
        task = job["vendor_ref"]["task_id"]
        vendor(sim, "/camb/apis", task, {"status": "SUCCESS", "run_id": 7010})  # finishes while it is down
        time.sleep(1)
        second, _ = start_gateway(tmp_path / "second.log", "--sim-url", sim, "--store", store, "--port", port)
        out, err = waiting.communicate(timeout=60)
        out = before + out
    finally:
        for server in (first, second, simulators):
            if server is not None:
                server.stop()
    assert waiting.returncode == 0, err
    lines = out.strip().splitlines()
    assert lines[-1].startswith(f"{job['id']} ended succeeded")
    versions = [int(v) for v in re.findall(r" v(\d+) ", out)]
    assert versions == [2, 3], out  # every version once, in order, across the restart
    assert "store schema migrated" not in (tmp_path / "second.log").read_text()  # the same store, kept


def test_installed_providers_and_the_markdown_tables_need_no_gateway() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "providers", "--markdown"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "GATEWAY_URL": "http://127.0.0.1:9"},
    )
    assert out.returncode == 0 and "| `PENDING` | `running` |" in out.stdout


def test_a_route_is_switched_to_another_vendor_by_a_config_change(tmp_path) -> None:
    """The README's walkthrough: the demo's route `text` takes segment_qa first; a file laid over the demo's
    configuration (`serve --demo --config FILE`) sends the same submit to camb, the client unchanged."""
    overlay = tmp_path / "camb-first.toml"
    overlay.write_text('[routes.text]\nproviders = ["camb"]\n')
    server, url = start_gateway(tmp_path / "overlay.log", "--config", str(overlay))
    try:
        assert "route text: camb" in server.log.read_text()
        (out,) = cli_all(url, ["submit", "--route", "text", "--from", "en-us", "--to", "de-de", "Hello", "--json"])
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["provider"] == "camb"
