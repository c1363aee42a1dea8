"""Recording vendor traffic into cassettes with no secret in them, and replaying it with no network."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

#: set by `make cassettes`: tests talk to live simulators and (re)write their cassettes
RECORD_ENV = "GATEWAY_RECORD"
#: the host name simulator traffic is recorded under, so that vcrpy's `ignore_localhost` can stay on
SIM_HOST = "sim.vendor.test"
#: request headers that carry credentials in some vendor's API
AUTH_HEADERS = ("authorization", "x-api-key", "proxy-authorization", "cookie")
REDACTED = "<redacted>"
_HEADER_LINE = re.compile(r"(?im)^\s*(" + "|".join(AUTH_HEADERS) + r"):")


def recording() -> bool:
    return os.environ.get(RECORD_ENV) == "1"


def _scrub_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def vcr_config(secrets: Iterable[str]) -> dict[str, Any]:
    """A vcrpy config that drops auth headers and every given secret from requests and responses,
    matches on method, path and query (hosts and ports vary between recordings), and never records
    the simulators' `__sim__` control calls."""
    secrets = [s for s in secrets if s]

    def before_request(request: Any) -> Any:
        if "/__sim__/" in request.path:
            return None
        request.uri = _scrub_text(request.uri, secrets)
        request.headers = {str(k): str(v) for k, v in request.headers.items()}
        if isinstance(request.body, bytes):
            request.body = _scrub_text(request.body.decode("utf-8", "replace"), secrets).encode()
        elif isinstance(request.body, str):
            request.body = _scrub_text(request.body, secrets)
        elif isinstance(request.body, dict | list):  # a json= body
            request.body = _scrub_text(json.dumps(request.body, sort_keys=True), secrets).encode()
        elif request.body is not None:  # a multipart form or a stream: matching ignores bodies, keep a marker
            request.body = f"<{type(request.body).__name__} body, not recorded>".encode()
        return request

    def before_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {}).get("string")
        if isinstance(body, bytes):
            try:
                response["body"]["string"] = _scrub_text(body.decode("utf-8"), secrets).encode()
            except UnicodeDecodeError:
                pass  # binary (an artifact): secrets are text and cannot be inside unless encoded
        elif isinstance(body, str):
            response["body"]["string"] = _scrub_text(body, secrets)
        # plain str keys and values: aiohttp's istr header names would not load back from safe YAML
        response["headers"] = {
            str(name): [_scrub_text(str(v), secrets) for v in values]
            for name, values in response.get("headers", {}).items()
            if str(name).lower() not in ("set-cookie", *AUTH_HEADERS)
        }
        return response

    return {
        "filter_headers": [(h, None) for h in AUTH_HEADERS],
        "match_on": ["method", "path", "query"],
        "before_record_request": before_request,
        "before_record_response": before_response,
        "decode_compressed_response": True,
        "ignore_localhost": True,
        "allow_playback_repeats": False,
    }


class SimHostResolver(AbstractResolver):
    """Resolves SIM_HOST to loopback so recorded URLs carry a non-localhost name; refuses everything else."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        if host != SIM_HOST:
            raise OSError(f"only {SIM_HOST} resolves in recordings")
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


def recording_session() -> aiohttp.ClientSession:
    """A client session for cassette tests: SIM_HOST goes to the local simulator when recording."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=SimHostResolver()))


def assert_no_secret_in(folder: os.PathLike[str] | str, secrets: Iterable[str]) -> int:
    """Fail when any file under `folder` holds a secret or an auth header; returns the files checked."""
    checked = 0
    secrets = [s for s in secrets if s]
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            checked += 1
            for secret in secrets:
                assert secret not in text, f"{path} holds a configured secret"
            found = _HEADER_LINE.search(text)
            assert found is None, f"{path} holds a {found.group(1)} header"
    return checked
