"""The import wizard — upload, check the file and its mapping, preview, run with a live
progress bar, read the results — and the import history with its reports."""

from __future__ import annotations

import re
from itertools import islice
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from rollbook.api.downloads import csv_download
from rollbook.api.schemas import SmallId
from rollbook.errors import NotFound, RollbookError
from rollbook.model import CODE_SUMMARIES, IGNORE, Code
from rollbook.services import accounts as accounts_service
from rollbook.services import imports as imports_service
from rollbook.services import jobs as jobs_service
from rollbook.web.deps import Reader, Staff, StaffForm, Viewer, redirect, render

router = APIRouter(include_in_schema=False)
PROBLEM_ROWS = 100
STATUSES = ("created", "updated", "unchanged", "skipped")


@router.get("/imports")
def history(request: Request, viewer: Reader) -> Response:
    store = request.app.state.store
    return render(
        request,
        "imports.html",
        viewer,
        imports=imports_service.list_imports(store, viewer.slug),
        jobs=[
            j
            for j in jobs_service.list_jobs(store, viewer.principal, limit=20)
            if j["status"] in ("queued", "running")
        ],
    )


@router.get("/imports/new")
def upload_page(request: Request, viewer: Staff) -> Response:
    return render(request, "upload.html", viewer, limit=request.app.state.settings.max_upload_bytes)


@router.post("/imports/new")
async def upload(request: Request, viewer: StaffForm) -> Response:
    settings = request.app.state.settings
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return render(
            request, "upload.html", viewer, status=422, limit=settings.max_upload_bytes,
            error="Choose a CSV or Excel (.xlsx) file first.",
        )  # fmt: skip
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        return render(
            request, "upload.html", viewer, status=413, limit=settings.max_upload_bytes,
            error=f"The file is larger than {settings.max_upload_bytes:,} bytes; split it.",
        )  # fmt: skip
    try:
        saved = jobs_service.save_upload(
            request.app.state.store, viewer.principal, file.filename, data, settings.read_limits()
        )
    except RollbookError as error:
        return render(
            request, "upload.html", viewer, status=422, limit=settings.max_upload_bytes,
            error=f"{file.filename}: {error.message}",
        )  # fmt: skip
    return redirect(f"/uploads/{saved['upload_id']}")


def _choices(form: Any, automatic: list[dict[str, Any]]) -> tuple[dict[str, str], bool]:
    """The mapping a mapping form sent — only the columns whose choice differs from the
    automatic mapping (so that remembered and same-name columns stay so) — and the drift
    guard's override."""
    mapping = {}
    for i, column in enumerate(automatic):
        chosen = form.get(f"map:{i}")
        if isinstance(chosen, str) and chosen and chosen != (column["field"] or IGNORE):
            mapping[column["column"]] = chosen
    crm_column = form.get("crm_column")
    if isinstance(crm_column, str) and crm_column in {c["column"] for c in automatic}:
        mapping[crm_column] = "crm_id"
    return mapping, form.get("allow_unmapped_crm_id") == "on"


def _upload_page(
    request: Request,
    viewer: Viewer,
    upload_id: int,
    mapping: dict[str, str],
    allow: bool,
    status: int = 200,
    error: str | None = None,
) -> Response:
    store = request.app.state.store
    options = {"mapping": mapping, "allow_unmapped_crm_id": allow}
    found = jobs_service.inspect_upload(
        store, viewer.principal, upload_id, options, request.app.state.settings.read_limits()
    )
    settings = accounts_service.account_settings(store, viewer.slug)
    return render(
        request,
        "mapping.html",
        viewer,
        status=status,
        upload=found,
        fields=[f for f in settings.fields],
        ignore=IGNORE,
        allow=allow,
        error=error,
        columns=_columns_with_samples(found),
    )


def _columns_with_samples(found: dict[str, Any]) -> list[dict[str, Any]]:
    columns = []
    for i, column in enumerate(found["mapping"]):
        samples = [r["cells"][i] for r in found["sample"] if i < len(r["cells"])]
        columns.append(
            {**column, "index": i, "samples": [s for s in samples if s not in (None, "")][:3]}
        )
    return columns


@router.get("/uploads/{upload_id}")
def upload_view(request: Request, viewer: Staff, upload_id: SmallId) -> Response:
    return _upload_page(request, viewer, upload_id, {}, allow=False)


@router.post("/uploads/{upload_id}")
async def upload_action(request: Request, viewer: StaffForm, upload_id: SmallId) -> Response:
    """The mapping form's buttons: check the mapping again, preview, or import."""
    store = request.app.state.store
    form = await request.form()
    automatic = jobs_service.inspect_upload(
        store, viewer.principal, upload_id, {}, request.app.state.settings.read_limits()
    )["mapping"]
    mapping, allow = _choices(form, automatic)
    preview_job = form.get("preview_job")
    if isinstance(preview_job, str) and re.fullmatch(r"[0-9]{1,9}", preview_job):
        # "Import now" after a preview: the preview's own choices, for this same file only.
        previewed = jobs_service.get_job(store, viewer.principal, int(preview_job))
        if previewed["upload_id"] != upload_id:
            raise NotFound(f"there is no preview {preview_job} of this file", field="preview_job")
        options = previewed["options"]
        mapping, allow = options["mapping"], options["allow_unmapped_crm_id"]
    action = form.get("action")
    if action not in ("preview", "import"):
        return _upload_page(request, viewer, upload_id, mapping, allow)
    options = {"mapping": mapping, "allow_unmapped_crm_id": allow}
    if action == "import":
        found = jobs_service.inspect_upload(
            store, viewer.principal, upload_id, options, request.app.state.settings.read_limits()
        )
        if found["drift_warning"]:
            return _upload_page(
                request,
                viewer,
                upload_id,
                mapping,
                allow,
                status=409,
                error="The drift guard stops this import: map the CRM ID column, or tick the "
                "box to import without one.",
            )
    job = jobs_service.create_job(store, viewer.principal, upload_id, str(action), options)
    request.app.state.runner.submit(job["job_id"])
    return redirect(f"/jobs/{job['job_id']}")


@router.post("/uploads/{upload_id}/delete")
def delete_upload(request: Request, viewer: StaffForm, upload_id: SmallId) -> Response:
    jobs_service.delete_upload(request.app.state.store, viewer.principal, upload_id)
    return redirect("/imports", "The file was deleted.")


@router.get("/jobs/{job_id}")
def job_page(request: Request, viewer: Reader, job_id: SmallId) -> Response:
    job = jobs_service.get_job(request.app.state.store, viewer.principal, job_id)
    if job["status"] == "done" and job["kind"] == "import" and job["import_id"]:
        return redirect(f"/imports/{job['import_id']}")
    return render(
        request,
        "job.html",
        viewer,
        job=job,
        progress=progress_text(job),
        summaries=CODE_SUMMARIES,
        statuses=STATUSES,
    )


@router.get("/jobs/{job_id}/status")
def job_status(request: Request, viewer: Reader, job_id: SmallId) -> dict[str, Any]:
    """For the progress bar: the job's status, rows done of the file's rows, and what the bar's
    label says."""
    job = jobs_service.get_job(request.app.state.store, viewer.principal, job_id)
    return {"status": job["status"], **job["progress"], "text": progress_text(job)}


def progress_text(job: dict[str, Any]) -> str:
    """The progress bar's label. Once every row is checked, the last batches' writes and the
    commit take a moment more (~1.5 s of a million rows): the label says so, so that a full bar
    does not look stuck."""
    done, total = job["progress"]["done"] or 0, job["progress"]["total"]
    if job["status"] == "queued":
        return "Waiting to start…"
    if total is None:
        return "Reading rows…"
    last = "finishing the preview" if job["kind"] == "preview" else "saving"
    if total == 0:
        return f"The file has no rows; {last}…"
    if done >= total:
        return f"All {total:,} rows checked; {last}…"
    return f"{done:,} of {total:,} rows ({100 * done // total}%)"


@router.post("/jobs/{job_id}/retry")
def retry(request: Request, viewer: StaffForm, job_id: SmallId) -> Response:
    jobs_service.retry_job(request.app.state.store, viewer.principal, job_id)
    request.app.state.runner.submit(job_id)
    return redirect(f"/jobs/{job_id}")


def _problem_rows(
    request: Request, viewer: Viewer, import_id: int, code: str | None, status: str | None
) -> tuple[list[dict[str, Any]], int]:
    """Rows that were skipped or carry a code, filtered; the first page of them and how many."""
    chunks = imports_service.row_report(request.app.state.store, viewer.slug, import_id)
    shown: list[dict[str, Any]] = []
    total = 0
    for chunk in chunks:
        rows = chunk.filter((pl.col("status") == "skipped") | (pl.col("codes").fill_null("") != ""))
        if status:
            rows = rows.filter(pl.col("status") == status)
        if code:
            rows = rows.filter(pl.col("codes").str.split(";").list.contains(code))
        total += rows.height
        if len(shown) < PROBLEM_ROWS:
            shown.extend(islice(rows.iter_rows(named=True), PROBLEM_ROWS - len(shown)))
    return shown, total


@router.get("/imports/{import_id}")
def import_page(
    request: Request,
    viewer: Reader,
    import_id: SmallId,
    code: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(|created|updated|unchanged|skipped)$")] = None,
) -> Response:
    done = imports_service.show_import(request.app.state.store, viewer.slug, import_id)
    rows, matching = _problem_rows(request, viewer, import_id, code or None, status or None)
    return render(
        request,
        "import.html",
        viewer,
        imp=done,
        labels={
            f.key: f.label
            for f in accounts_service.account_settings(request.app.state.store, viewer.slug).fields
        },
        rows=rows,
        matching=matching,
        code=code or "",
        status_filter=status or "",
        statuses=STATUSES,
        codes=[c.value for c in Code],
        summaries=CODE_SUMMARIES,
    )


@router.get("/imports/{import_id}/rows.csv")
def row_report(request: Request, viewer: Reader, import_id: SmallId) -> Response:
    return csv_download(
        f"import-{import_id}-rows.csv",
        lambda out: imports_service.write_row_report_csv(
            request.app.state.store, viewer.slug, import_id, out
        ),
    )


@router.get("/imports/{import_id}/changed-numbers.csv")
def changed_numbers(request: Request, viewer: Reader, import_id: SmallId) -> Response:
    return csv_download(
        f"import-{import_id}-changed-numbers.csv",
        lambda out: imports_service.write_changed_numbers_csv(
            request.app.state.store, viewer.slug, import_id, out
        ),
    )
