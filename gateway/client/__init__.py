"""The Python client of the gateway's HTTP API: `AsyncClient` (aiohttp) and its synchronous wrapper `Client`.

from gateway.client import Client
with Client("http://127.0.0.1:8080", "demo-key") as gw:
    job = gw.submit_text(["Hello"], provider="camb", source_language="en-us", target_language="de-de")
    job = gw.wait(job.id, timeout=60)
    for output in gw.result(job.id).outputs:
        print(output.source, "->", output.target)
"""

from gateway.client.aio import AsyncClient, document_input, text_input
from gateway.client.errors import (
    BudgetExceeded,
    Conflict,
    GatewayError,
    IdempotencyMismatch,
    NoArtifact,
    NoResult,
    NotCancellable,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PaymentRequired,
    ProblemError,
    ServerError,
    StreamNotSupported,
    TransportError,
    Unauthorized,
    Unavailable,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
    WaitTimeout,
)
from gateway.client.sync import Client
from gateway.models import Job, Result

__all__ = [
    "AsyncClient",
    "BudgetExceeded",
    "Client",
    "Conflict",
    "GatewayError",
    "IdempotencyMismatch",
    "Job",
    "NoArtifact",
    "NoResult",
    "NotCancellable",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PaymentRequired",
    "ProblemError",
    "Result",
    "ServerError",
    "StreamNotSupported",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
    "UpstreamError",
    "UpstreamTimeout",
    "ValidationFailed",
    "WaitTimeout",
    "document_input",
    "text_input",
]
