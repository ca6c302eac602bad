"""Bulk API 2.0 in the Salesforce emulator: query jobs and ingest jobs, CSV in and out.

Query jobs pass ``UploadComplete -> InProgress -> JobComplete``, run one at a time in the
order they were created on a worker thread (as the org runs them on its own servers, while
the client does other work), and serve their results in pages (``Sforce-Locator``,
``"null"`` on the last page; ``Sforce-NumberOfRecords``). Ingest jobs are ``Open`` until
closed with ``UploadComplete``, are processed on the next status read, and report
``successfulResults``, ``failedResults`` and ``unprocessedRecords`` as CSV. Row locks hit
records at random, validation rules deterministically, and a server fault during processing
fails the job halfway, leaving the rest unprocessed.
"""

from __future__ import annotations

import base64
import csv
import io
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.salesforce.org import RecordError, SalesforceOrg, format_datetime, make_id
from icp_sync.sandbox.salesforce.soql import SoqlError, compile_where

__all__ = ["BulkError", "BulkJobs"]

_DELIMITERS = {
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


class BulkError(Exception):
    """A refused Bulk API request: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass(slots=True)
class _Job:
    id: str
    kind: str
    operation: str
    sobject: str
    state: str
    created: int
    delimiter: str
    line_ending: str
    query: str = ""
    external_id: str | None = None
    data: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    error: str = ""
    reads: int = 0
    created_by: str = ""

    def info(self, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": self.created_by,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version.lstrip("v")),
            "lineEnding": self.line_ending,
            "columnDelimiter": next(k for k, v in _DELIMITERS.items() if v == self.delimiter),
        }
        if self.kind == "ingest":
            body["jobType"] = "V2Ingest"
            if self.external_id:
                body["externalIdFieldName"] = self.external_id
            body["numberRecordsProcessed"] = len(self.successful) + len(self.failed)
            body["numberRecordsFailed"] = len(self.failed)
        else:
            body["jobType"] = "V2Query"
            body["numberRecordsProcessed"] = len(self.rows)
        if self.error:
            body["errorMessage"] = self.error
        return body


class BulkJobs:
    """The jobs of one emulator, and the routes that serve them."""

    def __init__(
        self,
        org: SalesforceOrg,
        *,
        faults: FaultInjector,
        fails_validation: Callable[[str], bool],
    ) -> None:
        self.org = org
        self.faults = faults
        self.fails_validation = fails_validation
        self.jobs: dict[str, _Job] = {}
        self.lock = threading.Lock()
        self._number = 0
        self._queries = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-query")

    def _job(self, job_id: str, kind: str) -> _Job:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise BulkError(404, "NOT_FOUND", f"The requested resource does not exist: {job_id}")
        return job

    def _new_id(self) -> str:
        with self.lock:
            self._number += 1
            return make_id("750", self._number)

    async def create_query(self, request: Request) -> Response:
        """``POST jobs/query``."""
        body = await request.json()
        operation = str(body.get("operation", "query"))
        if operation not in ("query", "queryAll"):
            raise BulkError(400, "INVALIDJOB", f"Invalid operation {operation!r}")
        soql = str(body.get("query", ""))
        try:
            # checked as a query is (names, literals), not run: the worker runs it
            parsed = self.org.check_query(soql)
            fields = self.org.object_fields(parsed.sobject)
            compile_where(parsed.where, lambda column: fields[column].type)
        except SoqlError as exc:
            raise BulkError(400, "INVALIDJOB", f"{exc.code}: {exc}") from None
        if parsed.order:
            # Bulk API 2.0 accepts ORDER BY but disables chunking; the sandbox serves it as is
            pass
        job = _Job(
            id=self._new_id(),
            kind="query",
            operation=operation,
            sobject=self.org.canonical_name(parsed.sobject),
            state="UploadComplete",
            created=self.org.now_ms(),
            delimiter=_DELIMITERS.get(str(body.get("columnDelimiter", "COMMA")), ","),
            line_ending=str(body.get("lineEnding", "LF")),
            query=soql,
        )
        self.jobs[job.id] = job
        self._queries.submit(self._run_query, job)
        return JSONResponse(job.info(request.path_params["version"]))

    def _run_query(self, job: _Job) -> None:
        """Run a query job (on the worker thread): its rows as of now, then ``JobComplete``."""
        if job.state != "UploadComplete":  # aborted or deleted while queued
            return
        job.state = "InProgress"
        try:
            parsed, rows = self.org.query(job.query, include_deleted=job.operation == "queryAll")
        except SoqlError as exc:
            job.error, job.state = f"{exc.code}: {exc}", "Failed"
            return
        header = parsed.fields
        job.rows = [[_cell(r.get(f)) for f in header] for r in rows]
        job.header = header
        if job.state == "InProgress":
            job.state = "JobComplete"

    async def query_job(self, request: Request) -> Response:
        """``GET``/``PATCH``/``DELETE jobs/query/{id}``."""
        job = self._job(request.path_params["job_id"], "query")
        if request.method == "DELETE":
            del self.jobs[job.id]
            return Response(status_code=204)
        if request.method == "PATCH":
            state = (await request.json()).get("state")
            if state != "Aborted":
                raise BulkError(400, "INVALIDJOBSTATE", f"cannot move a query job to {state!r}")
            job.state = "Aborted"
            return JSONResponse(job.info(request.path_params["version"]))
        job.reads += 1
        return JSONResponse(job.info(request.path_params["version"]))

    async def query_results(self, request: Request) -> Response:
        """``GET jobs/query/{id}/results?maxRecords=&locator=``."""
        job = self._job(request.path_params["job_id"], "query")
        if job.state != "JobComplete":
            raise BulkError(400, "INVALIDJOBSTATE", f"job {job.id} is {job.state}, not JobComplete")
        size = int(request.query_params.get("maxRecords") or 50_000)
        locator = request.query_params.get("locator")
        offset = int(base64.b64decode(locator).decode()) if locator else 0
        chunk = job.rows[offset : offset + size]
        following = offset + size
        next_locator = (
            base64.b64encode(str(following).encode()).decode()
            if following < len(job.rows)
            else "null"
        )
        request.state.read = len(chunk)
        return Response(
            _csv(job.header, chunk, job.delimiter, job.line_ending),
            media_type="text/csv",
            headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(chunk))},
        )

    async def create_ingest(self, request: Request) -> Response:
        """``POST jobs/ingest`` (create), ``GET jobs/ingest`` (list every ingest job)."""
        if request.method == "GET":
            version = request.path_params["version"]
            listed = [j.info(version) for j in self.jobs.values() if j.kind == "ingest"]
            return JSONResponse({"done": True, "records": listed, "nextRecordsUrl": None})
        body = await request.json()
        operation = str(body.get("operation", ""))
        if operation not in _OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"Invalid operation {operation!r}")
        try:
            sobject = self.org.canonical_name(str(body.get("object", "")))
        except SoqlError as exc:
            raise BulkError(400, "INVALIDJOB", str(exc)) from None
        if operation == "upsert" and not body.get("externalIdFieldName"):
            raise BulkError(400, "INVALIDJOB", "externalIdFieldName is required for upsert")
        job = _Job(
            id=self._new_id(),
            kind="ingest",
            operation=operation,
            sobject=sobject,
            state="Open",
            created=self.org.now_ms(),
            delimiter=_DELIMITERS.get(str(body.get("columnDelimiter", "COMMA")), ","),
            line_ending=str(body.get("lineEnding", "LF")),
            external_id=body.get("externalIdFieldName"),
            created_by=self.org.integration_user,
        )
        self.jobs[job.id] = job
        return JSONResponse(job.info(request.path_params["version"]))

    async def upload(self, request: Request) -> Response:
        """``PUT jobs/ingest/{id}/batches`` (CSV)."""
        job = self._job(request.path_params["job_id"], "ingest")
        if job.state != "Open":
            raise BulkError(
                400,
                "INVALIDJOBSTATE",
                f"job {job.id} is {job.state}; data can only be added while Open",
            )
        try:
            body = await request.body()
        except ClientDisconnect:  # the client died mid-upload: the job keeps what it had
            return Response(status_code=400)
        job.data.append(body.decode("utf-8"))
        return Response(status_code=201)

    async def ingest_job(self, request: Request) -> Response:
        """``GET``/``PATCH``/``DELETE jobs/ingest/{id}``."""
        job = self._job(request.path_params["job_id"], "ingest")
        version = request.path_params["version"]
        if request.method == "DELETE":
            del self.jobs[job.id]
            return Response(status_code=204)
        if request.method == "PATCH":
            state = (await request.json()).get("state")
            if state == "UploadComplete" and job.state == "Open":
                job.state = "UploadComplete"
            elif state == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
                job.state = "Aborted"
            else:
                raise BulkError(
                    400, "INVALIDJOBSTATE", f"cannot move job {job.id} from {job.state} to {state}"
                )
            return JSONResponse(job.info(version))
        if job.state == "UploadComplete":
            job.state = "InProgress"
        elif job.state == "InProgress":
            request.state.written = self._process(job)
        return JSONResponse(job.info(version))

    async def ingest_results(self, request: Request) -> Response:
        """``GET jobs/ingest/{id}/successfulResults|failedResults|unprocessedRecords``."""
        job = self._job(request.path_params["job_id"], "ingest")
        kind = request.path_params["kind"]
        if kind == "successfulResults":
            header, rows = ["sf__Id", "sf__Created", *job.header], job.successful
        elif kind == "failedResults":
            header, rows = ["sf__Id", "sf__Error", *job.header], job.failed
        elif kind == "unprocessedRecords":
            header, rows = job.header, job.unprocessed
        else:
            raise BulkError(404, "NOT_FOUND", f"unknown result set {kind!r}")
        request.state.read = len(rows)
        return Response(_csv(header, rows, job.delimiter, job.line_ending), media_type="text/csv")

    def _process(self, job: _Job) -> int:
        rows: list[list[str]] = []
        for chunk in job.data:
            reader = list(csv.reader(io.StringIO(chunk), delimiter=job.delimiter))
            if not reader:
                continue
            if not job.header:
                job.header = reader[0]
            rows.extend(reader[1:])
        job.rows = rows
        cut = len(rows)
        if self.faults.server_error():
            cut = len(rows) // 2
            job.error = "InternalServerError: the job failed while processing; retry the rest"
        written = 0
        for row in rows[:cut]:
            values = dict(zip(job.header, row, strict=False))
            try:
                record_id, created = self._apply(job, values)
            except (RecordError, SoqlError) as exc:
                code = exc.code
                message = exc.message if isinstance(exc, RecordError) else str(exc)
                fields = ":".join(exc.fields) if isinstance(exc, RecordError) else ""
                job.failed.append([values.get("Id", ""), f"{code}:{message}:{fields}--", *row])
                continue
            job.successful.append([record_id, "true" if created else "false", *row])
            written += 1
        job.unprocessed = rows[cut:]
        job.state = "Failed" if job.error else "JobComplete"
        return written

    def _apply(self, job: _Job, values: dict[str, str]) -> tuple[str, bool]:
        user = self.org.integration_user
        fields = {k: v for k, v in values.items() if k != "Id" and v != ""}
        record_id = values.get("Id", "")
        if job.operation == "insert":
            return self.org.insert(job.sobject, fields, user=user), True
        if job.operation in ("delete", "hardDelete"):
            self._faults(record_id)
            self.org.delete(job.sobject, record_id, user=user)
            return record_id, False
        if job.operation == "upsert":
            key = str(job.external_id)
            match = self.org.find(job.sobject, key, values.get(key, ""))
            if match is None:
                return self.org.insert(job.sobject, fields, user=user), True
            record_id = match
        if not record_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        self._faults(record_id)
        self.org.update(job.sobject, record_id, fields, user=user)
        return record_id, False

    def _faults(self, record_id: str) -> None:
        if self.fails_validation(record_id):
            raise RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "ICP fields cannot change on this record (validation rule)",
            )
        if self.faults.lock_row():
            raise RecordError(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
            )

    def routes(
        self,
        route: Callable[
            [str, str, Callable[[Any, Request], Awaitable[Response]], list[str]], list[Route]
        ],
        data: str,
    ) -> list[Route]:
        """The Bulk API 2.0 routes, wrapped by the emulator's ``route`` helper."""

        def bind(
            method: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Any, Request], Awaitable[Response]]:
            async def handler(_: Any, request: Request) -> Response:
                return await method(request)

            return handler

        return [
            *route(f"{data}/jobs/query", "jobs/query", bind(self.create_query), ["POST"]),
            *route(
                f"{data}/jobs/query/{{job_id}}",
                "jobs/query/job",
                bind(self.query_job),
                ["GET", "PATCH", "DELETE"],
            ),
            *route(
                f"{data}/jobs/query/{{job_id}}/results",
                "jobs/query/results",
                bind(self.query_results),
                ["GET"],
            ),
            *route(f"{data}/jobs/ingest", "jobs/ingest", bind(self.create_ingest), ["POST", "GET"]),
            *route(
                f"{data}/jobs/ingest/{{job_id}}",
                "jobs/ingest/job",
                bind(self.ingest_job),
                ["GET", "PATCH", "DELETE"],
            ),
            *route(
                f"{data}/jobs/ingest/{{job_id}}/batches",
                "jobs/ingest/batches",
                bind(self.upload),
                ["PUT"],
            ),
            *route(
                f"{data}/jobs/ingest/{{job_id}}/{{kind}}",
                "jobs/ingest/results",
                bind(self.ingest_results),
                ["GET"],
            ),
        ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.endswith("+0000") and "T" in value:
        return value[:-5] + "Z"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _csv(header: list[str], rows: list[list[str]], delimiter: str, line_ending: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=delimiter, lineterminator="\r\n" if line_ending == "CRLF" else "\n"
    )
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
