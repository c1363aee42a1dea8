"""Tolerant models of the document translator's bodies (vendor doc `doc-translator-job-status.md`, contract 5).

Every model keeps unknown fields (`extra="allow"`) and is meant to be built with `gateway.tolerant.lenient`,
which drops invalid values instead of failing. Statuses stay plain strings: an unknown one is data, not an error.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

#: the vendor's statuses (doc: "started", "processing", "completed", "failed"; the cleanup also knows "error")
STARTED = "started"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
ERROR = "error"
ENDED_STATUSES = frozenset({COMPLETED, FAILED, ERROR})


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class JobStatus(_Tolerant):
    """`GET /api/v1/status/{job_id}`: the job entry of the vendor's `translation_jobs` dictionary."""

    status: StrictStr | None = None
    #: whole percent 0..100: 0 at start, 20 after extraction, up to 80 during translation, 100 with the output file
    progress: StrictInt | StrictFloat | None = None
    #: the source file, as given to /translate
    file_path: StrictStr | None = None
    source_language: StrictStr | None = None
    target_language: StrictStr | None = None
    created_at: datetime | None = None
    #: path of the translated file on the vendor's side, set when completed
    output_file: StrictStr | None = None
    #: error message when the job failed, else null
    error: StrictStr | None = None
    #: e.g. "advanced"
    processing_type: StrictStr | None = None
    format_preservation: StrictBool | None = None


class UploadResponse(_Tolerant):
    """`POST /api/v1/upload` (multipart `file`, PDF only)."""

    upload_id: StrictStr | None = None
    filename: StrictStr | None = None
    size: StrictInt | None = None
    message: StrictStr | None = None


class TranslateResponse(_Tolerant):
    """`POST /api/v1/translate?file_path=&source_language=&target_language=`."""

    job_id: StrictStr | None = None
    #: "started"
    status: StrictStr | None = None
    #: processing type, e.g. "advanced"
    type: StrictStr | None = None
