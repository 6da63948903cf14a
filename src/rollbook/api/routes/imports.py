"""Importing over HTTP: upload a file (and see its format, first rows, mapping, suggestions and
the drift guard's warning), preview or import it as a background job, follow the job, read the
import's reports."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from rollbook.api.downloads import csv_download
from rollbook.api.errors import ApiError
from rollbook.api.inputs import REASON, has_nul
from rollbook.api.routes import API_PREFIX
from rollbook.api.schemas import ImportOut, ImportRequest, JobOut, SmallId, UploadOut
from rollbook.api.security import READ, STAFF
from rollbook.errors import InvalidInput
from rollbook.services import imports as imports_service
from rollbook.services import jobs as jobs_service
from rollbook.services.auth import Principal

router = APIRouter(prefix=API_PREFIX, tags=["imports"])
Reader = Annotated[Principal, Depends(READ)]
Staff = Annotated[Principal, Depends(STAFF)]
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, formula-safe."}
}


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                "too-large",
                f"The file is larger than {limit:,} bytes, the most one upload can be; split it.",
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/uploads", response_model=UploadOut, status_code=201)
async def upload(request: Request, file: UploadFile, caller: Staff) -> Any:
    """Upload a CSV or .xlsx file. The answer tells how it was read and how its columns would
    be mapped; nothing is imported yet."""
    settings = request.app.state.settings
    data = await _read_limited(file, settings.max_upload_bytes)
    return jobs_service.save_upload(
        request.app.state.store,
        caller,
        file.filename or "upload.csv",
        data,
        settings.read_limits(),
    )


@router.post("/uploads/{upload_id}/mapping", response_model=UploadOut)
def try_mapping(request: Request, upload_id: SmallId, body: ImportRequest, caller: Staff) -> Any:
    """How the upload's columns would be mapped with these choices (and whether the drift guard
    would refuse)."""
    return jobs_service.inspect_upload(
        request.app.state.store,
        caller,
        upload_id,
        body.model_dump(),
        request.app.state.settings.read_limits(),
    )


@router.delete("/uploads/{upload_id}", status_code=204)
def delete_upload(request: Request, upload_id: SmallId, caller: Staff) -> None:
    """Delete an uploaded file."""
    jobs_service.delete_upload(request.app.state.store, caller, upload_id)


def _start(
    request: Request, caller: Principal, upload_id: SmallId, kind: str, body: ImportRequest
) -> Any:
    job = jobs_service.create_job(
        request.app.state.store, caller, upload_id, kind, body.model_dump()
    )
    request.app.state.runner.submit(job["job_id"])
    return job


@router.post("/uploads/{upload_id}/preview", response_model=JobOut, status_code=202)
def preview(request: Request, upload_id: SmallId, body: ImportRequest, caller: Staff) -> Any:
    """Preview the import as a background job: the same counts and codes, nothing kept."""
    return _start(request, caller, upload_id, "preview", body)


@router.post("/uploads/{upload_id}/import", response_model=JobOut, status_code=202)
def run_import(request: Request, upload_id: SmallId, body: ImportRequest, caller: Staff) -> Any:
    """Import the upload as a background job. Follow it at /jobs/{job_id}."""
    return _start(request, caller, upload_id, "import", body)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(request: Request, caller: Reader) -> Any:
    """The account's latest jobs, newest first."""
    return jobs_service.list_jobs(request.app.state.store, caller)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(request: Request, job_id: SmallId, caller: Reader) -> Any:
    """A job: status, progress (rows done of the file's rows), and its result or error."""
    return jobs_service.get_job(request.app.state.store, caller, job_id)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, status_code=202)
def retry_job(request: Request, job_id: SmallId, caller: Staff) -> Any:
    """Run a failed job again (a failed import applied nothing)."""
    job = jobs_service.retry_job(request.app.state.store, caller, job_id)
    request.app.state.runner.submit(job_id)
    return job


@router.post("/imports", response_model=JobOut, status_code=202)
async def upload_and_import(
    request: Request,
    file: UploadFile,
    caller: Staff,
    mapping: Annotated[
        str | None,
        Form(description='JSON object of header to field key, e.g. {"Student ID": "crm_id"}.'),
    ] = None,
    allow_unmapped_crm_id: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form(description="Preview: the same counts, nothing kept.")] = False,
) -> Any:
    """Upload a file and import it in one call (a nightly upload's call): the answer is the
    job, at once. Follow it at /jobs/{job_id}."""
    settings = request.app.state.settings
    try:
        chosen = json.loads(mapping) if mapping else {}
    except json.JSONDecodeError as error:
        raise InvalidInput(f"mapping is not JSON: {error.msg}", field="mapping") from None
    if has_nul(chosen):
        raise InvalidInput(f"mapping {REASON}", field="mapping")
    job = jobs_service.start_import(
        request.app.state.store,
        caller,
        file.filename or "upload.csv",
        await _read_limited(file, settings.max_upload_bytes),
        "preview" if dry_run else "import",
        {"mapping": chosen, "allow_unmapped_crm_id": allow_unmapped_crm_id},
    )
    request.app.state.runner.submit(job["job_id"])
    return job


@router.get("/imports", response_model=list[ImportOut])
def list_imports(request: Request, caller: Reader) -> Any:
    """Past imports, newest first."""
    return imports_service.list_imports(request.app.state.store, caller.slug)


@router.get("/imports/{import_id}", response_model=ImportOut)
def get_import(request: Request, import_id: SmallId, caller: Reader) -> Any:
    """One import: file, format, mapping, counts per status and code."""
    return imports_service.show_import(request.app.state.store, caller.slug, import_id)


@router.get("/imports/{import_id}/rows", response_class=StreamingResponse, responses=CSV)
def row_report(request: Request, import_id: SmallId, caller: Reader) -> Any:
    """The row report: every row with its status, codes, message and contact id."""
    return csv_download(
        f"import-{import_id}-rows.csv",
        lambda out: imports_service.write_row_report_csv(
            request.app.state.store, caller.slug, import_id, out
        ),
    )


@router.get("/imports/{import_id}/changed-numbers", response_class=StreamingResponse, responses=CSV)
def changed_numbers(request: Request, import_id: SmallId, caller: Reader) -> Any:
    """The changed-numbers report: rows whose contact's phone differs from the file's."""
    return csv_download(
        f"import-{import_id}-changed-numbers.csv",
        lambda out: imports_service.write_changed_numbers_csv(
            request.app.state.store, caller.slug, import_id, out
        ),
    )
