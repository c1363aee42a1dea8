"""What the conformance kit needs to know about one provider to exercise it against its simulator."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.states import State


@dataclass(frozen=True)
class ConformanceCase:
    provider: str
    #: a native or canonical input the vendor accepts
    valid_input: dict[str, Any]
    #: an input the vendor itself rejects with 400/422 (not one the provider refuses before sending)
    invalid_input: dict[str, Any]
    #: (patch forced through `__sim__/jobs/{id}/state`, expected canonical state); covers every vendor status
    status_patches: list[tuple[dict[str, Any], State]]
    #: the simulator's job id for a vendor_ref
    sim_job_id: Callable[[dict[str, Any]], str]
    #: a vendor_ref of the right shape that the vendor does not know
    unknown_ref: dict[str, Any]
    #: patch that makes the job finished with a result, for fetching the result
    finished_patch: dict[str, Any] = field(default_factory=dict)
    #: whether the vendor checks a key at all
    has_auth: bool = True


#: the module of a plugin package that holds its conformance case (as `CASE`), beside the provider's module
CASE_MODULE = "conformance"


def case_for(provider: object) -> ConformanceCase:
    """The conformance case a plugin package ships for its provider: `CASE` in the module `conformance` of the
    package that defines the provider's class (e.g. `gateway_azure_batch.conformance`). The gateway's own suite
    runs its vendor-fault scenarios against every installed provider that has one. LookupError when none."""
    package = type(provider).__module__.rpartition(".")[0]
    try:
        module = importlib.import_module(f"{package}.{CASE_MODULE}")
    except ImportError:
        raise LookupError(f"{package} ships no {CASE_MODULE} module with a conformance case") from None
    case = getattr(module, "CASE", None)
    if not isinstance(case, ConformanceCase):
        raise LookupError(f"{package}.{CASE_MODULE} has no CASE (a gateway.testing.case.ConformanceCase)")
    return case
