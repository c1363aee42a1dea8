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


def redacted(field: str) -> str:
    """What a private field's value becomes in a cassette: still a usable id, so a replayed provider that sends
    it back (in a body or a URL) behaves as when it was recorded."""
    return f"redacted-{field}"


def vcr_config(
    secrets: Iterable[str], *, secret_fields: Iterable[str] = (), auth_headers: Iterable[str] = ()
) -> dict[str, Any]:
    """A vcrpy config that drops auth headers and every given secret from requests and responses,
    matches on method, path and query (hosts and ports vary between recordings), and never records
    the simulators' `__sim__` control calls.

    `secret_fields` are JSON keys whose values are per-job secrets the vendor hands out (a provider's
    `private_ref_fields`, e.g. a document key): wherever they appear in a JSON body their value becomes
    `redacted(field)`, and each value seen is scrubbed from every later request and response too (URLs,
    bodies that are not JSON). `auth_headers` names a vendor's own credential headers (a provider's
    `auth_headers(key)` keys), dropped like the usual ones."""
    secrets = [s for s in secrets if s]
    dropped = (*AUTH_HEADERS, *(h.lower() for h in auth_headers))
    fields = frozenset(secret_fields)

    def scrub_json(value: Any) -> Any:
        if isinstance(value, dict):
            clean = {}
            for key, item in value.items():
                if key in fields and isinstance(item, str) and item:
                    if item != redacted(key) and item not in secrets:
                        secrets.append(item)  # learned: scrubbed wherever it shows up from now on
                    clean[key] = redacted(key)
                else:
                    clean[key] = scrub_json(item)
            return clean
        if isinstance(value, list):
            return [scrub_json(item) for item in value]
        return value

    def scrub_body(text: str) -> str:
        if fields:
            try:
                text = json.dumps(scrub_json(json.loads(text)))
            except ValueError:
                pass
        return _scrub_text(text, secrets)

    def before_request(request: Any) -> Any:
        if "/__sim__/" in request.path:
            return None
        request.headers = {str(k): str(v) for k, v in request.headers.items()}
        if isinstance(request.body, bytes):
            request.body = scrub_body(request.body.decode("utf-8", "replace")).encode()
        elif isinstance(request.body, str):
            request.body = scrub_body(request.body)
        elif isinstance(request.body, dict | list):  # a json= body
            request.body = scrub_body(json.dumps(request.body, sort_keys=True)).encode()
        elif request.body is not None:  # a multipart form or a stream: matching ignores bodies, keep a marker
            request.body = f"<{type(request.body).__name__} body, not recorded>".encode()
        request.uri = _scrub_text(request.uri, secrets)
        return request

    def before_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {}).get("string")
        if isinstance(body, bytes):
            try:
                response["body"]["string"] = scrub_body(body.decode("utf-8")).encode()
            except UnicodeDecodeError:
                pass  # binary (an artifact): secrets are text and cannot be inside unless encoded
        elif isinstance(body, str):
            response["body"]["string"] = scrub_body(body)
        # plain str keys and values: aiohttp's istr header names would not load back from safe YAML
        response["headers"] = {
            str(name): [_scrub_text(str(v), secrets) for v in values]
            for name, values in response.get("headers", {}).items()
            if str(name).lower() not in ("set-cookie", *dropped)
        }
        return response

    return {
        "filter_headers": [(h, None) for h in dropped],
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


def assert_no_secret_in(
    folder: os.PathLike[str] | str, secrets: Iterable[str], *, secret_fields: Iterable[str] = ()
) -> int:
    """Fail when any file under `folder` holds a secret, an auth header, or a value of one of `secret_fields`
    other than its `redacted` stand-in; returns the files checked."""
    checked = 0
    secrets = [s for s in secrets if s]
    field_values = [(f, re.compile(r'\\?"' + re.escape(f) + r'\\?"\s*:\s*\\?"([^"\\]*)')) for f in secret_fields]
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
            for field, pattern in field_values:
                for value in pattern.findall(text):
                    assert value == redacted(field), f"{path} holds a value of the private field {field!r}"
    return checked
