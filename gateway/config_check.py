"""What a configuration leaves unset: every environment variable it names that is not set, and what that
disables. `gateway serve` warns about each at start; `gateway check --config FILE` reports them without
starting (exit 1 when something needed is missing), as `nginx -t` does."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.plugins import get_providers
from gateway.provider import ProviderConfig

#: a missing setting that breaks something the configuration asks for
NEEDED = "needed"
#: a missing setting that only closes an optional door
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    level: str
    #: where in the configuration (e.g. providers.camb.api_key_env)
    key: str
    #: the environment variable, when the finding is about one
    env: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.level:<8} {self.key}: {self.message}"


def _unset(name: str | None) -> bool:
    return bool(name) and not os.environ.get(name or "")


def findings(config: GatewayConfig, settings: dict[str, ProviderConfig]) -> list[Finding]:
    """Every unset variable the configuration names, with what it disables; also a gateway nobody can use."""
    found: list[Finding] = []
    installed = get_providers()
    for name, spec in sorted(settings.items()):
        if _unset(spec.api_key_env):
            vendor = installed[name].display_name if name in installed else name
            found.append(
                Finding(
                    NEEDED,
                    f"providers.{name}.api_key_env",
                    spec.api_key_env,
                    f"${spec.api_key_env} is not set: requests to {vendor} carry no key and the vendor refuses them",
                )
            )
    for tenant, tenant_spec in sorted(config.tenants.items()):
        missing = [env for env in tenant_spec.key_envs if _unset(env)]
        usable = bool(tenant_spec.keys) or len(missing) < len(tenant_spec.key_envs)
        for env in missing:
            level, effect = (WARNING, "this key is refused") if usable else (NEEDED, f"tenant {tenant} has no key")
            found.append(
                Finding(
                    level,
                    f"tenants.{tenant}.key_envs",
                    env,
                    f"${env} is not set: {effect}" + ("" if usable else ": it cannot use the API"),
                )
            )
        if _unset(tenant_spec.webhook_secret_env) and not tenant_spec.webhook_secret:
            found.append(
                Finding(
                    NEEDED,
                    f"tenants.{tenant}.webhook_secret_env",
                    tenant_spec.webhook_secret_env,
                    f"${tenant_spec.webhook_secret_env} is not set: {tenant}'s webhooks are held (never sent unsigned)",
                )
            )
        previous = tenant_spec.previous_webhook_secret_env
        if _unset(previous) and not tenant_spec.previous_webhook_secret:
            found.append(
                Finding(
                    WARNING,
                    f"tenants.{tenant}.previous_webhook_secret_env",
                    previous,
                    f"${previous} is not set: {tenant}'s webhooks are signed with the current secret only "
                    "(receivers still on the previous one refuse them)",
                )
            )
    for env in config.operator.key_envs:
        if _unset(env):
            found.append(
                Finding(
                    WARNING,
                    "operator.key_envs",
                    env,
                    f"${env} is not set: this operator key cannot open the dashboard (/ui) or /v1/operator",
                )
            )
    if _unset(config.store.secret_key_env):
        found.append(
            Finding(
                WARNING,
                "store.secret_key_env",
                config.store.secret_key_env,
                f"${config.store.secret_key_env} is not set: per-job vendor secrets are stored unencrypted",
            )
        )
    if not config.operator.keys and not config.operator.key_envs:
        found.append(
            Finding(WARNING, "operator", None, "no operator key: the dashboard (/ui) and /v1/operator stay closed")
        )
    if not config.tenants:
        found.append(Finding(WARNING, "tenants", None, "no tenant: nobody can use the API"))
    if not settings:
        found.append(Finding(WARNING, "providers", None, "no provider: every submit is refused"))
    return found


def needed(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.level == NEEDED]
