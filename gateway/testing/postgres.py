"""A private PostgreSQL server for tests and benchmarks: `initdb` into a temporary directory, one free loopback
port, fsync off, stopped (and its directory removed) at the end. Never touches a system-wide server.

    with PostgresServer.start_in(tmp_dir) as server:
        url = server.create_database()   # postgresql://postgres@127.0.0.1:PORT/NAME, empty

Run as root, the server runs as the `postgres` user (PostgreSQL refuses to run as root). `find_bin_dir()` is
None when no PostgreSQL is installed (tests then skip, unless CI=true: `make postgres` installs it)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

#: where Debian puts each major version's server binaries
DEBIAN_ROOT = Path("/usr/lib/postgresql")
#: environment variable naming a bin directory to use instead of searching
BIN_ENV = "GATEWAY_PG_BIN"
START_TIMEOUT_S = 30


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine, or the server did not start."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl (newest Debian version first, then PATH), or None."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    if DEBIAN_ROOT.is_dir():
        versions = sorted(
            (p for p in DEBIAN_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        candidates.extend(p / "bin" for p in versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One private server (see the module docstring)."""

    def __init__(self, root: Path, bin_dir: Path, port: int) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"
        self._as_postgres = os.geteuid() == 0

    # lifecycle

    @classmethod
    def start_in(cls, parent: Path | None = None, *, bin_dir: Path | None = None) -> PostgresServer:
        """initdb a fresh cluster in a new directory under `parent` (default: the system temp dir, which the
        `postgres` user can reach, unlike pytest's private tmp) and start it; PostgresUnavailable on failure."""
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found; run `make postgres`")
        root = Path(tempfile.mkdtemp(prefix="gateway-pg-", dir=parent))
        server = cls(root, bin_dir, free_port())
        if server._as_postgres:
            shutil.chown(root, user="postgres")
        server._run(
            "initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-locale"
        )
        server.start()
        return server

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            return ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            self._command(program, *args), capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Start (or restart after `stop`) the server on its port; returns once it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "start", "-w")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise PostgresUnavailable(f"PostgreSQL did not listen on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnects every client; `immediate`: like a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "stop", "-w")

    def destroy(self) -> None:
        with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    # databases

    @property
    def _psql(self) -> str:
        local = self.bin_dir / "psql"
        return str(local) if local.is_file() else "psql"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over TCP (no server-side file access); its output."""
        done = subprocess.run(
            [self._psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        name = name or f"gw_{secrets.token_hex(6)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)
