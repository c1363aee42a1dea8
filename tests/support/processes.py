"""A gateway server as a subprocess, on a port it picks itself (`--port 0`) and reports in its output."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"gateway listening on (http://[\w.:\[\]-]+)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    #: the base URL the server printed once it was listening
    url: str
    #: its stdout and stderr
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown handler runs
        self.proc.wait(10)


async def start_gateway(args: list[str], log: Path, *, env: dict[str, str] | None = None) -> ServerProcess:
    """`python -m gateway serve <args> --port 0`; returns once it printed the URL it listens on (30 s at most)."""
    proc = _spawn([sys.executable, "-m", "gateway", "serve", *args, "--port", "0"], log, env)

    def listening() -> str | None:
        text = log.read_text()
        assert proc.poll() is None, f"the gateway exited with {proc.returncode}:\n{text}"
        found = LISTENING.search(text)
        return found.group(1) if found else None

    try:
        url = await wait_until(listening, within=30.0, what=f"the gateway to print its URL into {log}")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return ServerProcess(proc, url, log)


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    with open(log, "w") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
