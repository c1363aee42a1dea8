"""The conformance case of the doc_translator provider (see gateway/testing/case.py)."""

from __future__ import annotations

import base64

from gateway.states import State
from gateway.testing.case import ConformanceCase

# a tiny one-page PDF (what providers.doc_translator.simulator.make_pdf("Hello, world") writes), spelled out here so
# that the case does not depend on the simulator's helper
TINY_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
    b" /Resources << /Font << /F1 5 0 R >> >> >>\nendobj\n"
    b"4 0 obj\n<< /Length 43 >>\nstream\nBT /F1 12 Tf 72 770 Td (Hello, world) Tj ET\nendstream\nendobj\n"
    b"5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n"
    b"xref\n0 6\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \n"
    b"0000000241 00000 n \n0000000334 00000 n \n"
    b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n404\n%%EOF\n"
)

CASE = ConformanceCase(
    provider="doc_translator",
    valid_input={
        "kind": "document",
        "source_language": "en",
        "target_language": "de",
        "filename": "hello.pdf",
        "content_base64": base64.b64encode(TINY_PDF).decode("ascii"),
    },
    # a native input naming a file that was never uploaded: well-formed, so the provider sends it, and the vendor
    # answers 404 {"detail": "File not found"}, which the provider turns into a VendorValidationError on
    # input.file_path (the vendor itself has no 422 for this)
    invalid_input={"file_path": "no-such-upload", "source_language": "en", "target_language": "de"},
    status_patches=[
        ({"status": "started", "progress": 0}, State.RUNNING),
        ({"status": "processing", "progress": 20}, State.RUNNING),
        ({"status": "processing", "progress": 80}, State.RUNNING),
        ({"status": "completed", "progress": 100, "output_file": "/tmp/outputs/hello_de.pdf"}, State.SUCCEEDED),
        ({"status": "failed", "error": "Translation failed: engine unavailable"}, State.FAILED),
        ({"status": "error", "error": "PDF extraction crashed"}, State.FAILED),
    ],
    sim_job_id=lambda ref: ref["job_id"],
    unknown_ref={"job_id": "00000000-0000-4000-8000-000000000000"},
    finished_patch={
        "status": "completed",
        "progress": 100,
        "error": None,
        "output_file": "/tmp/outputs/hello_de.pdf",
    },
    has_auth=False,
)
