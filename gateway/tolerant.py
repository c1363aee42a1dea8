"""Reading vendor bodies without trusting them: a model from whatever parts of a body are valid."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from gateway.states import CanonicalStatus, State

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("gateway.normalize")


def lenient(model: type[M], body: Any, *, max_prunes: int = 200) -> M | None:
    """Validate `body` as `model`, dropping each invalid value (or the list item / object holding a
    missing required field) until what remains is valid. None when the body is not an object at all."""
    if not isinstance(body, dict):
        return None
    try:
        data = copy.deepcopy(body)
    except RecursionError:  # absurdly deep nesting: nothing usable
        return None
    for _ in range(max_prunes):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            if not _prune(data, list(exc.errors()[0]["loc"])):
                return None
        except (TypeError, ValueError, RecursionError):
            return None
    return None


def _prune(data: Any, loc: list[Any]) -> bool:
    """Remove the innermost existing element named by `loc`; False when nothing could be removed."""
    while loc:
        parent = _walk(data, loc[:-1])
        key = loc[-1]
        if isinstance(parent, dict) and key in parent:
            del parent[key]
            return True
        if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent):
            del parent[key]
            return True
        loc = loc[:-1]
    return False


def _walk(data: Any, loc: list[Any]) -> Any:
    for key in loc:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def field_at(body: Any, path: str) -> Any:
    """The value at a dotted path of nested objects (`"error.message"`), or None where the path breaks off."""
    for key in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def status_string(body: Any, key: str = "status") -> str | None:
    """The vendor's status value (at `key`, a dotted path) as a string, or None when absent or not a string."""
    value = field_at(body, key)
    return value if isinstance(value, str) else None


def read_status(body: Any, mapping: Mapping[str, State], key: str = "status") -> tuple[str | None, State]:
    """The vendor's status string (at `key`, a dotted path) and the state `mapping` gives it: `State.UNKNOWN`
    when the status is absent, not a string, or not in the mapping (compared exactly, case included)."""
    status = status_string(body, key)
    return status, (mapping.get(status, State.UNKNOWN) if status is not None else State.UNKNOWN)


def safe_normalize(
    normalize: Callable[[Any], CanonicalStatus], body: Any, *, status_field: str = "status"
) -> CanonicalStatus:
    """`normalize(body)`, made total: when the rules raise or answer something that is not a canonical status
    (a plugin's bug), the body maps to `unknown` with the vendor's status string where one is readable.
    The one guard every caller of a provider's `normalize` goes through."""
    try:
        status = normalize(body)
    except Exception:
        log.exception("%s raised on a vendor body; mapped to unknown", getattr(normalize, "__qualname__", normalize))
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status_string(body, status_field))
    if not isinstance(status, CanonicalStatus):
        log.error("%s answered %r, not a CanonicalStatus; mapped to unknown", normalize, type(status).__name__)
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status_string(body, status_field))
    return status


Rules = Callable[[Any], CanonicalStatus]


@overload
def never_raises(normalize: Rules) -> Rules: ...
@overload
def never_raises(*, status_field: str = "status") -> Callable[[Rules], Rules]: ...
def never_raises(normalize: Rules | None = None, *, status_field: str = "status") -> Rules | Callable[[Rules], Rules]:
    """Make a provider's normalize total (see `safe_normalize`): for a provider's own module-level rules.
    `@never_raises`, or `@never_raises(status_field="state")` for a vendor whose status is elsewhere."""

    def wrap(rules: Rules) -> Rules:
        @functools.wraps(rules)
        def total(body: Any) -> CanonicalStatus:
            return safe_normalize(rules, body, status_field=status_field)

        return total

    return wrap(normalize) if normalize is not None else wrap
