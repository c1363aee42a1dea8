"""What the conformance kit needs to know about this provider (`gateway.testing.case.case_for` finds it here: the
gateway's own test suite runs its vendor-fault scenarios against every installed provider that ships one)."""

from gateway.states import State
from gateway.testing.case import ConformanceCase

TEXT = {"kind": "text", "source_language": "en", "target_language": "de", "texts": ["Hello", "Good bye"]}

CASE = ConformanceCase(
    provider="azure_batch",
    valid_input=TEXT,
    invalid_input={**TEXT, "target_language": "tlh"},  # the vendor has no Klingon
    status_patches=[
        ({"status": "NotStarted"}, State.QUEUED),
        ({"status": "Running"}, State.RUNNING),
        ({"status": "Cancelling"}, State.RUNNING),
        ({"status": "Succeeded"}, State.SUCCEEDED),  # before the failures: the documents are translated by then
        ({"status": "ValidationFailed"}, State.FAILED),
        ({"status": "Failed"}, State.FAILED),
        ({"status": "Cancelled"}, State.CANCELLED),
    ],
    sim_job_id=lambda ref: ref["batch_id"],
    unknown_ref={"batch_id": "0123456789abcdef01234567", "batchKey": "bk_unknown"},
    finished_patch={"status": "Succeeded"},
)
