"""The provider interface plugin authors implement (documented in docs/plugins.md)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import InputError, UnsupportedOperation, VendorError, VendorMalformed
from gateway.inputs import SubmitInput, TextInput
from gateway.models import ResultParts
from gateway.sim.base import Simulator
from gateway.states import CanonicalStatus, State
from gateway.tolerant import read_status, safe_normalize
from gateway.vendor_http import DEFAULT_ERROR_FIELDS, VendorConnection, path_segment


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    submit: bool = True
    status: bool = True
    result: bool = True
    cancel: bool = False
    artifact: bool = False
    progress: bool = False
    input_kinds: list[str] = Field(default_factory=lambda: ["native"])


#: how long after the vendor's estimate the gateway asks again (the vendor's clock and ours may differ a little)
ETA_MARGIN_S = 1.0


class PollSettings(BaseModel):
    """How the gateway polls one provider (contract section 3); defaults follow CAMB's guidance."""

    model_config = ConfigDict(extra="forbid")

    initial_s: float = Field(default=1.0, gt=0, le=3600)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_s: float = Field(default=10.0, gt=0, le=3600)
    jitter: float = Field(default=0.1, ge=0, le=1)
    concurrency: int = Field(default=8, ge=1, le=1000)
    rate_per_s: float = Field(default=20.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    #: the longest the gateway waits on a vendor's estimate before asking again (a job may fail early)
    eta_max_s: float = Field(default=300.0, gt=0, le=86400)
    #: how long the watcher keeps trying to keep a finished job's result (with the poll backoff and breaker)
    #: before it ends the job with an issue `result_unavailable` (contract section 3)
    result_deadline_s: float = Field(default=3600.0, gt=0, le=30 * 86400)


class ProviderConfig(BaseModel):
    """Every provider's config table; a provider may extend it with its own keys."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    #: name of the environment variable holding the vendor key (never the key itself)
    api_key_env: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def api_key(self) -> str | None:
        """The vendor key, read from the environment at connection time."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class DemoSettings(BaseModel):
    """How `gateway serve --demo` configures a provider against its own simulator (with `base_url`,
    `api_key_env` and a quick `poll` set by the demo itself)."""

    model_config = ConfigDict(extra="forbid")

    #: the provider's own config keys the demo needs (e.g. Datafold's `project_id`)
    config: dict[str, Any] = Field(default_factory=dict)
    #: the demo routes the provider is on, with its place on each (lower goes first)
    routes: dict[str, int] = Field(default_factory=dict)


@dataclass
class ArtifactDownload:
    content_type: str
    filename: str
    chunks: AsyncIterator[bytes]


class Provider:
    """Base class for providers. Subclasses set the class attributes and implement the async methods.

    A provider is stateless: everything per-deployment (base URL, key, caches) lives in the
    `VendorConnection` the gateway passes to each I/O method.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: vendor status -> canonical state, as shown to users; `normalize` is the authority
    mapping: ClassVar[Mapping[str, State]] = {}
    #: where the vendor's status string is in a status body (a dotted path for a nested one: "job.state")
    status_field: ClassVar[str] = "status"
    #: human notes on mapping rows that depend on more than the status string
    mapping_notes: ClassVar[Mapping[str, str]] = {}
    config_model: ClassVar[type[ProviderConfig]] = ProviderConfig
    #: URL prefix of this vendor's simulator inside `gateway simulate`
    sim_prefix: ClassVar[str | None] = None
    #: dotted paths of the vendor's error bodies where its message is, tried in order
    error_fields: ClassVar[tuple[str, ...]] = DEFAULT_ERROR_FIELDS
    #: unusual HTTP statuses of this vendor and the typed error each means, e.g. `{456: VendorQuotaExceeded}`
    status_errors: ClassVar[Mapping[int, type[VendorError]]] = {}
    #: vendor_ref keys holding per-job vendor secrets: kept for the I/O methods, never shown (gateway.refs)
    private_ref_fields: ClassVar[frozenset[str]] = frozenset()

    # -- pure -------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        """Map one vendor status body to the canonical status. Must never raise.

        The default is the mapping table alone: the status string at `status_field`, its state in `mapping`,
        `unknown` for anything else. Override it to add what depends on more than the status word (errors,
        issues, progress, stage, eta_s)."""
        status, state = read_status(body, self.mapping, self.status_field)
        return CanonicalStatus(state=state, vendor_status=status)

    def canonical_status(self, body: Any) -> CanonicalStatus:
        """`normalize(body)` made total: a plugin bug (an exception, a wrong return type) gives `unknown` with
        the vendor's status string. What the gateway calls; not meant to be overridden."""
        return safe_normalize(self.normalize, body, status_field=self.status_field)

    def suggest_poll_s(self, status: CanonicalStatus) -> float | None:
        """Seconds until the gateway should ask about this (non-terminal) job again, or None for the backoff
        ladder. The default follows the vendor's own estimate: shortly after `status.eta_s` when there is one.
        The gateway keeps the answer within [poll.initial_s, poll.eta_max_s]."""
        if status.eta_s is not None and status.eta_s > 0:
            return status.eta_s + ETA_MARGIN_S
        return None

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """The vendor's own auth header for this key."""
        return {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        """Check a vendor_ref given to `attach`; raise InputError when it cannot be one of ours."""
        if not isinstance(ref, dict) or not ref:
            raise InputError("vendor_ref must be a non-empty object", loc=["vendor_ref"])
        return ref

    def refine_ref(self, ref: dict[str, Any], status_body: Any) -> dict[str, Any]:
        """The vendor_ref after a status answer (e.g. CAMB adds its run_id)."""
        return ref

    def source_texts(self, input: SubmitInput) -> list[str] | None:
        """The texts a job of this input translates, in the order the result's outputs come back, so each
        output can carry its source (None: not a text job). The canonical text input's `texts` by default;
        a provider whose native input carries texts says where."""
        return list(input.texts) if isinstance(input, TextInput) else None

    def connect(self, session: Any, config: ProviderConfig) -> VendorConnection:
        key = config.api_key()
        return VendorConnection(
            self.name,
            session,
            config.base_url,
            headers=self.auth_headers(key),
            timeout_s=config.timeout_s,
            secrets=[key] if key else [],
            settings=config,
            error_fields=self.error_fields,
            status_errors=self.status_errors,
        )

    # -- I/O ----------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """Create the vendor job; return its vendor_ref. `input` is a `TextInput` or `DocumentInput` the gateway
        validated (only of a kind in `capabilities.input_kinds`), or the vendor's native body as a dict."""
        raise UnsupportedOperation(f"{self.name} cannot submit")

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        """The vendor's raw status body for this job."""
        raise UnsupportedOperation(f"{self.name} cannot report status")

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """The finished job's result, read from the vendor."""
        raise UnsupportedOperation(f"{self.name} has no result endpoint")

    async def cancel(self, conn: VendorConnection, ref: dict[str, Any]) -> None:
        raise UnsupportedOperation(f"{self.name} cannot cancel jobs")

    @asynccontextmanager
    async def open_artifact(self, conn: VendorConnection, ref: dict[str, Any]) -> AsyncIterator[ArtifactDownload]:
        """Stream the job's output file."""
        raise UnsupportedOperation(f"{self.name} has no artifacts")
        yield  # pragma: no cover

    # -- simulator ------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> Simulator | None:
        """A faithful local imitation of the vendor's API, served by `gateway simulate`."""
        return None

    def demo_settings(self) -> DemoSettings | None:
        """How `gateway serve --demo` configures this provider; None leaves it out of the demo. The default:
        every provider with a simulator (`sim_prefix`) joins, with no extra keys and on no route."""
        return DemoSettings() if self.sim_prefix else None

    # -- description ------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "capabilities": self.capabilities.model_dump(),
            "mapping": {status: str(state) for status, state in self.mapping.items()},
        }


def vendor_given_id(value: Any, *, provider: str, problem: str) -> Any:
    """A job id the vendor just answered, checked to be usable as one URL path segment of the later requests:
    VendorMalformed (`problem`) when it cannot be one, a vendor's fault and never the caller's."""
    try:
        path_segment(value, name="job_id")
    except InputError as exc:
        raise VendorMalformed(problem, provider=provider) from exc
    return value


def texts_of(input: dict[str, Any]) -> list[str] | None:
    """The input's `texts` when it is a list of strings."""
    texts = input.get("texts")
    if isinstance(texts, list) and all(isinstance(t, str) for t in texts):
        return list(texts)
    return None
