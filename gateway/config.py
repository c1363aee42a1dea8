"""The gateway's configuration: a TOML file read with tomllib into pydantic models."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.plugins import get_providers
from gateway.provider import ProviderConfig
from gateway.webhooks.signing import standard_key

DIGEST_PREFIX = "sha256:"
#: an RFC 6750 bearer token (b64token): what `Authorization: Bearer <key>` may carry
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class ConfigError(Exception):
    """The config cannot be used; the message names the file, the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: the most jobs one list call returns
    max_page: int = Field(default=200, ge=1, le=1000)
    #: how deeply objects and arrays may nest in a request body (the body itself is level 1)
    max_json_depth: int = Field(default=32, ge=4, le=200)
    #: a job's `metadata`: its size as compact UTF-8 JSON, its nesting depth, and its keys at all levels
    max_metadata_bytes: int = Field(default=16 * 1024, ge=64, le=1024 * 1024)
    max_metadata_depth: int = Field(default=8, ge=1, le=32)
    max_metadata_keys: int = Field(default=100, ge=1, le=10_000)
    #: how long a submit waits for an earlier in-flight request with the same Idempotency-Key
    idempotency_wait_s: float = Field(default=60.0, ge=0, le=600)
    #: how long a reservation of an Idempotency-Key lives unless its request renews it (a crashed
    #: gateway's reservation is taken over after this)
    idempotency_lease_s: float = Field(default=30.0, ge=1, le=3600)


class StoreConfig(_Strict):
    #: sqlite:///abs/path.db, or a bare path; relative paths are under state_dir
    url: str = "sqlite://gateway.db"
    state_dir: str = ".state"
    #: name of the environment variable holding the Fernet key(s) that encrypt providers' private vendor_ref
    #: fields at rest (comma-separated: the first encrypts, all decrypt); unset: stored apart, unencrypted
    secret_key_env: str | None = None


#: the delays between the tries of one event (after the first, immediate one): the Standard Webhooks schedule,
#: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; ten tries over about 3 days 4 hours
DEFAULT_RETRY_SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
#: keys the [webhooks] table no longer takes, and what replaced them
_REPLACED_WEBHOOK_KEYS = {
    "allow_private": 'allow_networks, a list of CIDRs (e.g. allow_networks = ["127.0.0.0/8", "::1/128"])',
    "initial_backoff_s": "retry_schedule_s, the list of delays between tries",
    "max_backoff_s": "retry_schedule_s, the list of delays between tries",
}


class WebhookConfig(_Strict):
    #: networks (CIDRs) webhook URLs may reach besides public addresses; link-local and cloud metadata
    #: addresses are reached only through an entry inside their own range (docs/webhooks.md, SSRF rules)
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    #: seconds between the tries of an event after the first one; an event failing every try is dead-lettered
    retry_schedule_s: list[float] = Field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE_S), max_length=50)
    #: each delay is drawn from [(1 - jitter) * delay, delay]
    jitter: float = Field(default=0.2, ge=0, lt=1)
    #: the longest a receiver's Retry-After may push the next try back
    max_retry_after_s: float = Field(default=86400.0, ge=0)
    #: one try's limit: connecting, sending, and the receiver's answer
    timeout_s: float = Field(default=15.0, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, replacement in _REPLACED_WEBHOOK_KEYS.items():
                if key in data:
                    raise ValueError(f"webhooks.{key} was replaced by {replacement}")
        return data

    @field_validator("retry_schedule_s")
    @classmethod
    def _delays_positive(cls, delays: list[float]) -> list[float]:
        if any(not 0 < delay <= 7 * 86400 for delay in delays):
            raise ValueError("each delay must be above 0 and at most 7 days (604800 s)")
        return delays

    @property
    def tries(self) -> int:
        """How many tries one event gets before it is dead-lettered."""
        return len(self.retry_schedule_s) + 1


class KeysConfig(_Strict):
    """Bearer keys: given as digests or plain text in the file, or named environment variables."""

    #: keys as "sha256:<hex digest>" (preferred) or plain text
    keys: list[str] = Field(default_factory=list)
    #: names of environment variables holding plain keys
    key_envs: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _keys_well_formed(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if key.startswith(DIGEST_PREFIX):
                digest = key[len(DIGEST_PREFIX) :]
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError("a sha256: key must be followed by 64 hex digits")
            elif len(key) < 8 or not BEARER_TOKEN.fullmatch(key):
                raise ValueError("plain keys must be at least 8 characters of a bearer token (RFC 6750)")
        return keys

    def key_digests(self) -> list[bytes]:
        """SHA-256 digests of every key of this tenant, for constant-time comparison."""
        digests = []
        for key in self.keys:
            if key.startswith(DIGEST_PREFIX):
                digests.append(bytes.fromhex(key[len(DIGEST_PREFIX) :]))
            else:
                digests.append(hashlib.sha256(key.encode()).digest())
        for env in self.key_envs:
            value = os.environ.get(env)
            if value:
                digests.append(hashlib.sha256(value.encode()).digest())
        return digests


class BudgetConfig(_Strict):
    """What a tenant may spend: money per period, by currency, and/or jobs per UTC day. A submit while the recorded
    spend of any currency has reached its limit, or with the day's jobs used up, is refused (402 budget_exceeded)."""

    #: the most the tenant may spend per `period`, by ISO 4217 currency code (e.g. {EUR = 50.0})
    money: dict[str, float] = Field(default_factory=dict)
    #: the period of `money`, in UTC calendar terms
    period: Literal["day", "month"] = "month"
    #: the most jobs the tenant may submit per UTC day (shadow runs not counted)
    jobs_per_day: int | None = Field(default=None, ge=0)

    @field_validator("money")
    @classmethod
    def _money_well_formed(cls, money: dict[str, float]) -> dict[str, float]:
        for currency, limit in money.items():
            if len(currency) != 3 or not currency.isascii() or not currency.isupper():
                raise ValueError(f"{currency!r} is not an ISO 4217 currency code (three capital letters)")
            if not math.isfinite(limit) or limit < 0:
                raise ValueError(f"the {currency} limit must be a finite amount of at least 0")
        return money


class TenantConfig(KeysConfig):
    #: what the tenant may spend (none: no limit)
    budget: BudgetConfig | None = None
    #: name of the environment variable holding the webhook signing secret (`whsec_<base64>`, docs/webhooks.md)
    webhook_secret_env: str | None = None
    #: the secret itself (for demos and tests; prefer webhook_secret_env)
    webhook_secret: str | None = None
    #: during a rotation, the secret being replaced: events are signed with both until the receivers moved
    previous_webhook_secret_env: str | None = None
    previous_webhook_secret: str | None = None
    #: when the previous secret stops signing (no end: until it is removed from the config)
    previous_webhook_secret_until: AwareDatetime | None = None

    @field_validator("webhook_secret", "previous_webhook_secret")
    @classmethod
    def _secret_well_formed(cls, secret: str | None) -> str | None:
        if secret is not None:
            standard_key(secret)  # ValueError names the rule, never the secret
        return secret

    #: may adopt vendor jobs with POST /v1/jobs/attach. Off unless granted: every tenant shares the
    #: gateway's vendor accounts, so attach reaches jobs this tenant did not start
    may_attach: bool = False

    def permissions(self) -> frozenset[str]:
        """What this tenant may do beyond its own jobs."""
        return frozenset({"attach"} if self.may_attach else ())

    def secret(self) -> str | None:
        """The current webhook secret (its environment variable, else the inline value), or None."""
        return _secret_from(self.webhook_secret_env, self.webhook_secret)

    def webhook_secrets(self) -> WebhookSecrets:
        """The tenant's webhook secrets read now (environment included); ConfigError when one is malformed."""
        current = self.secret()
        previous = _secret_from(self.previous_webhook_secret_env, self.previous_webhook_secret)
        for name, value in (("webhook secret", current), ("previous webhook secret", previous)):
            if value is not None:
                try:
                    standard_key(value)
                except ValueError as exc:
                    raise ConfigError(f"the {name}: {exc}") from None
        return WebhookSecrets(current=current, previous=previous, previous_until=self.previous_webhook_secret_until)


def _secret_from(env: str | None, inline: str | None) -> str | None:
    if env:
        return os.environ.get(env) or inline
    return inline


@dataclass(frozen=True)
class WebhookSecrets:
    """One tenant's webhook secrets: the current one, and during a rotation the previous one (until a time)."""

    current: str | None
    previous: str | None = None
    previous_until: datetime | None = None

    def signing(self, now: datetime) -> list[str]:
        """The secrets that sign an event sent at `now`: the current first, then the previous while it lasts.
        Empty when the tenant has no current secret (its events are held, never sent unsigned)."""
        if not self.current:
            return []
        previous = self.previous
        if previous and previous != self.current and (self.previous_until is None or now < self.previous_until):
            return [self.current, previous]
        return [self.current]


class OperatorConfig(KeysConfig):
    """Who may use the operator dashboard (/ui) and the operator API (/v1/operator): keys of their own,
    never a tenant's. With no key configured, both are closed."""


#: the error codes of a failed vendor job that move a routed job on to the route's next provider by default: the
#: vendor's timeout, its retries exhausted, the vendor lost the job, quota or payment
FAILOVER_CODES = ("timeout", "retries_exhausted", "vendor_job_lost", "payment_required", "upstream_quota_exceeded")


class RouteConfig(_Strict):
    providers: list[str] = Field(min_length=1)
    #: job-level fail-over: the `error.code`s of a failed vendor job that resubmit it to the next provider
    failover_on: list[str] = Field(default_factory=lambda: list(FAILOVER_CODES))
    #: the most vendor attempts of one job, submits refused at the vendor included (default: one per provider)
    max_attempts: int | None = Field(default=None, ge=1)
    #: seconds after its submit when an unfinished job fails (`deadline_exceeded`); none: no deadline
    deadline_s: float | None = Field(default=None, gt=0)
    #: a provider that receives a copy of a sampled fraction of this route's submits, as linked shadow jobs
    shadow: str | None = None
    #: the fraction of submits copied to `shadow` (0..1)
    shadow_sample: float = Field(default=1.0, ge=0, le=1)
    #: seeds the shadow sampling (reproducible runs); none: a random seed per process
    shadow_seed: int | None = None

    @property
    def attempt_limit(self) -> int:
        return self.max_attempts if self.max_attempts is not None else len(self.providers)


class GatewayConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    operator: OperatorConfig = Field(default_factory=OperatorConfig)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _routes_name_configured_providers(self) -> GatewayConfig:
        for route, spec in self.routes.items():
            for name in spec.providers:
                if name not in self.providers:
                    raise ValueError(f"routes.{route}: provider {name!r} is not configured under [providers]")
            if spec.shadow is not None and spec.shadow not in self.providers:
                raise ValueError(f"routes.{route}: shadow {spec.shadow!r} is not configured under [providers]")
        tenant_keys = {digest for spec in self.tenants.values() for digest in spec.key_digests()}
        if tenant_keys & set(self.operator.key_digests()):
            raise ValueError("operator: an operator key must not also be a tenant's key")
        return self

    def key_table(self) -> list[tuple[bytes, str]]:
        """(key digest, tenant) for every configured key, environment keys read now."""
        return [(digest, name) for name, spec in self.tenants.items() for digest in spec.key_digests()]

    def operator_key_table(self) -> list[tuple[bytes, str]]:
        """(key digest, "operator") for every operator key, environment keys read now."""
        return [(digest, "operator") for digest in self.operator.key_digests()]

    def tenant_for_key(self, key: str) -> str | None:
        return tenant_for(self.key_table(), key)


def tenant_for(table: list[tuple[bytes, str]], key: str) -> str | None:
    """The tenant owning this key: its digest compared in constant time with every configured digest."""
    offered = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    owner = None
    for digest, tenant in table:
        if hmac.compare_digest(offered, digest) and owner is None:
            owner = tenant
    return owner


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_config(data: dict[str, Any], *, source: str = "<config>") -> tuple[GatewayConfig, dict[str, ProviderConfig]]:
    """Validate a config mapping and each provider's table; ConfigError names the source, the key and the problem."""
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{source}: {_where(err['loc'])}: {err['msg']}") from None
    installed = get_providers()
    settings: dict[str, ProviderConfig] = {}
    for name, table in config.providers.items():
        if name not in installed:
            known = ", ".join(sorted(installed)) or "none"
            raise ConfigError(f"{source}: providers.{name}: no installed provider of that name (installed: {known})")
        try:
            settings[name] = installed[name].config_model.model_validate(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"{source}: {_where(('providers', name, *err['loc']))}: {err['msg']}") from None
    return config, settings


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables, unvalidated; ConfigError when it cannot be read or is not TOML."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` laid over it: tables merged key by key, any other value replaced."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path) -> tuple[GatewayConfig, dict[str, ProviderConfig]]:
    """Read and validate a TOML config file; every problem is a ConfigError naming the file."""
    return parse_config(read_toml(path), source=str(path))
