"""Reading vendor bodies without trusting them: a model from whatever parts of a body are valid."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from gateway.states import CanonicalStatus, State

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("gateway.normalize")


#: pruning rounds before `lenient` gives up; each round removes every invalid value found by one validation, and
#: only an object left without a required field needs another round, so this bounds the nesting, not the errors
MAX_ROUNDS = 8


def lenient(model: type[M], body: Any) -> M | None:
    """Validate `body` as `model`, keeping every valid value: a field whose value fails validation falls back
    to its default (it is left out), and a list item or mapping entry that fails is dropped (so is an object
    left without a required field, in the list, mapping or field holding it). None when the body is not an
    object, or cannot be read as `model` at all (a required top-level field missing, absurd nesting).

    One validation finds every invalid value at once; all of them are removed together from a copy of only the
    containers on their paths (the caller's body is never changed), and the result is validated again. Removing
    a value can only leave its object without a required field, so a few rounds (at most `MAX_ROUNDS`) settle
    any body, however many bad values it has."""
    if not isinstance(body, dict):
        return None
    data: Any = body
    for _ in range(MAX_ROUNDS):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            doomed = _doomed_paths(data, exc.errors(include_url=False, include_context=False, include_input=False))
            if not doomed:
                return None
            data = _without(data, doomed)
        except (TypeError, ValueError, RecursionError):
            return None
    return None


#: a tree of paths to remove: key -> subtree, or key -> None to remove that element itself
_Tree = dict[Any, Any]


def _doomed_paths(data: Any, errors: list[Any]) -> _Tree:
    """For each error, the innermost existing element its location names, as one tree of removals."""
    tree: _Tree = {}
    for error in errors:
        path = _existing_prefix(data, error["loc"])
        if not path:
            continue  # the error is about the body itself (e.g. a missing required top-level field)
        node: _Tree | None = tree
        for key in path[:-1]:
            assert node is not None
            node = node.setdefault(key, {})
            if node is None:
                break  # an enclosing element is removed already
        else:
            assert node is not None
            node[path[-1]] = None
    return tree


def _existing_prefix(data: Any, loc: tuple[Any, ...]) -> list[Any]:
    """The longest prefix of `loc` that names existing elements of `data`."""
    path: list[Any] = []
    for key in loc:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            break
        path.append(key)
    return path


def _without(data: Any, tree: _Tree) -> Any:
    """A copy of `data` without the elements `tree` names; containers off those paths are shared, not copied."""
    if isinstance(data, dict):
        out = dict(data)
        for key, sub in tree.items():
            if sub is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _without(out[key], sub)
        return out
    if isinstance(data, list):
        return [
            item if (sub := tree.get(i, {})) == {} else _without(item, sub)
            for i, item in enumerate(data)
            if tree.get(i, {}) is not None
        ]
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
