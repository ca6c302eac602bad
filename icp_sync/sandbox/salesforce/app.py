"""The Salesforce API emulator: REST, OAuth, Tooling and Bulk API 2.0 over a sandbox org.

Served over TLS (simple-salesforce only speaks https). Every API call is authenticated,
counted against the org's daily limit (``Sforce-Limit-Info`` on every answer), recorded in
the port's :class:`~icp_sync.sandbox.accounting.ApiStats`, and exposed to the fault
profile: 503s, concurrency limits, expiring sessions, row locks and validation rules.
Errors use Salesforce's bodies: a JSON array of ``{"message", "errorCode"}`` at the top
level, ``{"statusCode", "message", "fields"}`` per record.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.control import control_routes
from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.salesforce.bulk import BulkError, BulkJobs
from icp_sync.sandbox.salesforce.org import RecordError, SalesforceOrg, format_datetime, make_id
from icp_sync.sandbox.salesforce.soql import SoqlError, parse_datetime_ms

__all__ = ["SalesforceCredentials", "create_salesforce_app"]

_COLLECTION_LIMIT = 200
_ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)
_CURSORS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesforceCredentials:
    """What the sandbox org accepts.

    Attributes:
        access_token: A session id valid from the start (until a fault expires it).
        client_id: Connected app consumer key (client credentials, password, JWT flows).
        client_secret: Connected app consumer secret.
        username: The integration user's username.
        password: Its password.
        security_token: Its security token (appended to the password at login).
        jwt_public_key_pem: When set, JWT bearer assertions must be RS256-signed with the
            matching private key.
    """

    access_token: str
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str = ""
    jwt_public_key_pem: str | None = None


def _errors(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


class _Api:
    """State shared by the routes of one emulator: tokens, cursors, bulk jobs."""

    def __init__(
        self,
        org: SalesforceOrg,
        credentials: SalesforceCredentials,
        stats: ApiStats,
        faults: FaultInjector,
    ) -> None:
        self.org = org
        self.credentials = credentials
        self.stats = stats
        self.faults = faults
        self.lock = threading.Lock()
        self.tokens: dict[str, int] = {credentials.access_token: 0}
        self.cursors: OrderedDict[str, tuple[list[dict[str, Any]], str, bool]] = OrderedDict()
        self.bulk = BulkJobs(org, faults=faults, fails_validation=self.fails_validation)

    def fails_validation(self, record_id: str) -> bool:
        """Deterministic per record, like a real validation rule: same record, same answer."""
        probability = self.faults.profile.validation
        if probability <= 0:
            return False
        digest = hashlib.sha256(f"{self.faults.profile.seed}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < probability

    def issue_token(self) -> str:
        token = f"00D5g0000000001!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens[token] = 0
        return token

    def limit_header(self) -> dict[str, str]:
        used = min(self.org.api_used, self.org.daily_api_limit)
        return {"Sforce-Limit-Info": f"api-usage={used}/{self.org.daily_api_limit}"}


Handler = Callable[[_Api, Request], Awaitable[Response]]


def _endpoint(api: _Api, name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with latency, auth, daily quota, faults, accounting and headers."""

    async def wrapped(request: Request) -> Response:
        label = f"{request.method} {name}"
        request.state.read = 0
        request.state.written = 0
        await api.faults.delay()
        refusal = _authenticate(api, request)
        if refusal is None:
            with api.lock:
                api.org.api_used += 1
                over = api.org.api_used > api.org.daily_api_limit
            if over:
                refusal = _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            elif api.faults.server_error():
                refusal = _errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
            elif api.faults.rate_limited():
                refusal = _errors(
                    403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
                )
        if refusal is not None:
            api.stats.record(label)
            refusal.headers.update(api.limit_header())
            return refusal
        try:
            response = await handler(api, request)
        except SoqlError as exc:
            response = _errors(400, exc.code, str(exc))
        except RecordError as exc:
            status = 404 if exc.code == "NOT_FOUND" else 400
            response = _errors(status, exc.code, exc.message)
        except BulkError as exc:
            response = _errors(exc.status, exc.code, str(exc))
        api.stats.record(
            label, records_read=request.state.read, records_written=request.state.written
        )
        response.headers.update(api.limit_header())
        return response

    return wrapped


def _authenticate(api: _Api, request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expired = _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
    if scheme.lower() not in ("bearer", "oauth") or not token:
        return expired
    limit = api.faults.profile.session_expiry_after
    with api.lock:
        if token not in api.tokens:
            return expired
        api.tokens[token] += 1
        if limit and api.tokens[token] > limit:
            del api.tokens[token]
            return expired
    return None


def _base_url(request: Request) -> str:
    host = request.headers.get("host", f"{request.url.hostname}:{request.url.port}")
    return f"https://{host}"


async def _versions(request: Request) -> JSONResponse:
    version = request.app.state.api.org.api_version
    return JSONResponse(
        [{"label": "Sandbox", "url": f"/services/data/v{version}", "version": version}]
    )


async def _resources(api: _Api, request: Request) -> Response:
    version = request.path_params["version"]
    names = ("sobjects", "query", "queryAll", "limits", "composite", "tooling", "jobs")
    return JSONResponse({n: f"/services/data/{version}/{n}" for n in names})


async def _token(request: Request) -> JSONResponse:
    api: _Api = request.app.state.api
    creds = api.credentials
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    grant = form.get("grant_type", "")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        decoded = base64.b64decode(basic[6:]).decode()
        client_id, _, client_secret = decoded.partition(":")
    api.stats.record("POST oauth2/token")
    denied = JSONResponse(
        {"error": "invalid_grant", "error_description": "authentication failure"}, status_code=400
    )
    if grant == "client_credentials":
        if client_id != creds.client_id or client_secret != creds.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                status_code=400,
            )
    elif grant == "password":
        expected = creds.password + creds.security_token
        if client_id != creds.client_id or client_secret != creds.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                status_code=400,
            )
        if form.get("username") != creds.username or form.get("password") != expected:
            return denied
    elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        if not _valid_assertion(creds, form.get("assertion", "")):
            return denied
    else:
        return JSONResponse(
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
            status_code=400,
        )
    token = api.issue_token()
    base = _base_url(request)
    return JSONResponse(
        {
            "access_token": token,
            "instance_url": base,
            "id": f"{base}/id/00D5g0000000001AAA/{api.org.integration_user}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )


def _valid_assertion(creds: SalesforceCredentials, assertion: str) -> bool:
    try:
        if creds.jwt_public_key_pem:
            claims = jwt.decode(
                assertion,
                creds.jwt_public_key_pem,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
            )
        else:
            claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return claims.get("iss") == creds.client_id and claims.get("sub") == creds.username


async def _soap_login(request: Request) -> Response:
    api: _Api = request.app.state.api
    creds = api.credentials
    body = (await request.body()).decode("utf-8", "replace")
    api.stats.record("POST soap/login")

    def element(tag: str) -> str | None:
        match = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", body, re.S)
        return match.group(1) if match else None

    username, password = element("username"), element("password")
    version = request.path_params["version"]
    if username != creds.username or password not in (
        creds.password + creds.security_token,
        creds.password if not creds.security_token else None,
    ):
        fault = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
            "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
            "username, password, security token; or user locked out.</faultstring><detail>"
            "<sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
            "<sf:exceptionMessage>Invalid username, password, security token; or user locked "
            "out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
            "</soapenv:Envelope>"
        )
        return Response(fault, status_code=500, media_type="text/xml")
    token = api.issue_token()
    base = _base_url(request)
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/00D5g0000000001</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/00D5g0000000001</serverUrl>"
        f"<sessionId>{token}</sessionId><userId>{api.org.integration_user}</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(envelope, media_type="text/xml")


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    size = int(match.group(1)) if match else 2000
    return max(200, min(2000, size))


def _page(
    api: _Api,
    request: Request,
    *,
    rows: list[dict[str, Any]],
    sobject: str,
    include_deleted: bool,
    offset: int,
    locator: str | None,
) -> JSONResponse:
    size = _batch_size(request)
    chunk = rows[offset : offset + size]
    version = request.path_params["version"]
    resource = "queryAll" if include_deleted else "query"
    body: dict[str, Any] = {
        "totalSize": len(rows),
        "done": offset + size >= len(rows),
        "records": [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/{version}/sobjects/{sobject}/{r['Id']}",
                },
                **r,
            }
            if "Id" in r
            else {"attributes": {"type": sobject}, **r}
            for r in chunk
        ],
    }
    if not body["done"]:
        if locator is None:
            locator = make_id("01g", int.from_bytes(secrets.token_bytes(5), "big"))
            with api.lock:
                api.cursors[locator] = (rows, sobject, include_deleted)
                while len(api.cursors) > _CURSORS:
                    api.cursors.popitem(last=False)
        body["nextRecordsUrl"] = f"/services/data/{version}/{resource}/{locator}-{offset + size}"
    request.state.read = len(chunk)
    return JSONResponse(body)


async def _query(api: _Api, request: Request, *, include_deleted: bool) -> Response:
    soql = request.query_params.get("q")
    if not soql:
        return _errors(400, "MALFORMED_QUERY", "A query string has to be specified")
    parsed, rows = api.org.query(soql, include_deleted=include_deleted)
    if parsed.count:
        request.state.read = 0
        return JSONResponse({"totalSize": len(rows), "done": True, "records": []})
    return _page(
        api,
        request,
        rows=rows,
        sobject=parsed.sobject,
        include_deleted=include_deleted,
        offset=0,
        locator=None,
    )


async def _query_live(api: _Api, request: Request) -> Response:
    return await _query(api, request, include_deleted=False)


async def _query_all(api: _Api, request: Request) -> Response:
    return await _query(api, request, include_deleted=True)


async def _query_more(api: _Api, request: Request) -> Response:
    locator, _, offset = request.path_params["cursor"].rpartition("-")
    with api.lock:
        cursor = api.cursors.get(locator)
    if cursor is None or not offset.isdigit():
        return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    rows, sobject, include_deleted = cursor
    return _page(
        api,
        request,
        rows=rows,
        sobject=sobject,
        include_deleted=include_deleted,
        offset=int(offset),
        locator=locator,
    )


async def _limits(api: _Api, request: Request) -> Response:
    return JSONResponse(api.org.limits())


async def _global_describe(api: _Api, request: Request) -> Response:
    objects = [
        {"name": n, "label": n, "keyPrefix": api.org.prefix(n), "queryable": True, "custom": False}
        for n in api.org.sobjects()
    ]
    return JSONResponse({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})


async def _metadata(api: _Api, request: Request) -> Response:
    described = api.org.describe(request.path_params["sobject"])
    summary = {k: described[k] for k in ("name", "label", "keyPrefix", "custom", "queryable")}
    return JSONResponse({"objectDescribe": summary, "recentItems": []})


async def _describe(api: _Api, request: Request) -> Response:
    return JSONResponse(api.org.describe(request.path_params["sobject"]))


def _window(request: Request) -> tuple[int, int]:
    try:
        start = parse_datetime_ms(request.query_params["start"])
        end = parse_datetime_ms(request.query_params["end"])
    except (KeyError, ValueError) as exc:
        raise RecordError(
            "INVALID_REPLICATION_DATE", f"start and end are required ISO datetimes: {exc}"
        ) from None
    return start, end


async def _deleted(api: _Api, request: Request) -> Response:
    start, end = _window(request)
    earliest = api.org.now_ms() - 15 * 86_400_000
    rows = api.org.deleted_between(request.path_params["sobject"], max(start, earliest), end)
    return JSONResponse(
        {
            "deletedRecords": [{"id": i, "deletedDate": format_datetime(t)} for i, t in rows],
            "earliestDateAvailable": format_datetime(earliest),
            "latestDateCovered": format_datetime(min(end, api.org.now_ms())),
        }
    )


async def _updated(api: _Api, request: Request) -> Response:
    start, end = _window(request)
    ids = api.org.updated_between(request.path_params["sobject"], start, end)
    return JSONResponse(
        {"ids": ids, "latestDateCovered": format_datetime(min(end, api.org.now_ms()))}
    )


def _record_faults(api: _Api, record_id: str) -> RecordError | None:
    if api.fails_validation(record_id):
        return RecordError(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "ICP fields cannot change on this record (validation rule)",
        )
    if api.faults.lock_row():
        return RecordError(
            "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"
        )
    return None


async def _create(api: _Api, request: Request) -> Response:
    values = await request.json()
    record_id = api.org.insert(
        request.path_params["sobject"], values, user=api.org.integration_user
    )
    request.state.written = 1
    return JSONResponse({"id": record_id, "success": True, "errors": []}, status_code=201)


async def _record(api: _Api, request: Request) -> Response:
    sobject, record_id = request.path_params["sobject"], request.path_params["record_id"]
    if request.method == "GET":
        fields = request.query_params.get("fields")
        record = api.org.get(sobject, record_id, fields.split(",") if fields else None)
        request.state.read = 1
        name = api.org.canonical_name(sobject)
        return JSONResponse(
            {
                "attributes": {
                    "type": name,
                    "url": f"/services/data/v{api.org.api_version}/sobjects/{name}/{record_id}",
                },
                **record,
            }
        )
    if request.method == "DELETE":
        api.org.delete(sobject, record_id, user=api.org.integration_user)
        return Response(status_code=204)
    fault = _record_faults(api, record_id)
    if fault is not None:
        raise fault
    api.org.update(sobject, record_id, await request.json(), user=api.org.integration_user)
    request.state.written = 1
    return Response(status_code=204)


async def _collections(api: _Api, request: Request) -> Response:
    if request.method == "DELETE":
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        return _collection_delete(api, request, ids)
    body = await request.json()
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return _errors(400, "JSON_PARSER_ERROR", "records is required")
    if len(records) > _COLLECTION_LIMIT:
        return _errors(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    results: list[dict[str, Any]] = []
    undo: list[tuple[str, str, dict[str, Any] | None]] = []
    with api.org.lock:
        results.extend(_collection_write(api, request.method, item, undo) for item in records)
        if all_or_none and not all(r["success"] for r in results):
            api.org.restore(undo)
            results = [
                r
                if not r["success"]
                else {
                    "id": r.get("id"),
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "message": _ROLLED_BACK,
                            "fields": [],
                        }
                    ],
                }
                for r in results
            ]
    request.state.written = sum(1 for r in results if r["success"])
    return JSONResponse(results)


def _collection_write(
    api: _Api, method: str, item: Any, undo: list[tuple[str, str, dict[str, Any] | None]]
) -> dict[str, Any]:
    if not isinstance(item, dict) or "type" not in (item.get("attributes") or {}):
        return {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_TYPE",
                    "message": "Must send a concrete entity type.",
                    "fields": [],
                }
            ],
        }
    sobject = str(item["attributes"]["type"])
    # field names are case-insensitive: the documented examples send "id"
    values = {k: v for k, v in item.items() if k != "attributes" and k.casefold() != "id"}
    record_id = next((v for k, v in item.items() if k.casefold() == "id"), None)
    try:
        if method == "POST":
            if record_id:
                raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            new_id = api.org.insert(sobject, values, user=api.org.integration_user)
            undo.append((sobject, new_id, None))
            return {"id": new_id, "success": True, "errors": []}
        if not record_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        fault = _record_faults(api, str(record_id))
        if fault is not None:
            raise fault
        undo.append((sobject, str(record_id), api.org.snapshot(sobject, str(record_id))))
        api.org.update(sobject, str(record_id), values, user=api.org.integration_user)
        return {"id": record_id, "success": True, "errors": []}
    except (RecordError, SoqlError) as exc:
        error = (
            exc.as_error()
            if isinstance(exc, RecordError)
            else {"statusCode": exc.code, "message": str(exc), "fields": []}
        )
        result: dict[str, Any] = {"success": False, "errors": [error]}
        if record_id:
            result["id"] = record_id
        return result


def _collection_delete(api: _Api, request: Request, ids: list[str]) -> Response:
    results = []
    for record_id in ids:
        sobject = api.org.object_of_id(record_id)
        try:
            if sobject is None:
                raise RecordError("INVALID_ID_FIELD", f"invalid id: {record_id}")
            api.org.delete(sobject, record_id, user=api.org.integration_user)
            results.append({"id": record_id, "success": True, "errors": []})
        except RecordError as exc:
            results.append({"id": record_id, "success": False, "errors": [exc.as_error()]})
    request.state.written = sum(1 for r in results if r["success"])
    return JSONResponse(results)


async def _tooling_field(api: _Api, request: Request) -> Response:
    body = await request.json()
    full_name = str(body.get("FullName", ""))
    metadata = body.get("Metadata") or {}
    field_id = api.org.add_field(full_name, metadata)
    request.state.written = 1
    return JSONResponse(
        {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []},
        status_code=201,
    )


async def _tooling_query(api: _Api, request: Request) -> Response:
    soql = request.query_params.get("q", "")
    match = re.match(r"\s*SELECT\s+(.+?)\s+FROM\s+CustomField\b(.*)$", soql, re.I | re.S)
    if not match:
        return _errors(400, "INVALID_TYPE", "only CustomField can be queried in this sandbox")
    wanted = [f.strip() for f in match.group(1).split(",")]
    table = re.search(r"TableEnumOrId\s*=\s*'([^']*)'", match.group(2), re.I)
    rows = api.org.custom_fields(table.group(1) if table else None)
    name = re.search(r"DeveloperName\s*=\s*'([^']*)'", match.group(2), re.I)
    if name:
        rows = [r for r in rows if str(r["DeveloperName"]).casefold() == name.group(1).casefold()]
    unknown = [f for f in wanted if f not in ("Id", "DeveloperName", "TableEnumOrId", "FullName")]
    if unknown:
        return _errors(
            400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity 'CustomField'."
        )
    records = [{"attributes": {"type": "CustomField"}, **{f: r[f] for f in wanted}} for r in rows]
    request.state.read = len(records)
    return JSONResponse(
        {
            "size": len(records),
            "totalSize": len(records),
            "done": True,
            "records": records,
            "entityTypeName": "CustomField",
        }
    )


async def _set_limits(request: Request) -> JSONResponse:
    api: _Api = request.app.state.api
    body = await request.json()
    with api.lock:
        if "daily_api_limit" in body:
            api.org.daily_api_limit = int(body["daily_api_limit"])
        if "api_used" in body:
            api.org.api_used = int(body["api_used"])
    return JSONResponse({"daily_api_limit": api.org.daily_api_limit, "api_used": api.org.api_used})


def create_salesforce_app(
    org: SalesforceOrg,
    *,
    credentials: SalesforceCredentials,
    stats: ApiStats,
    faults: FaultInjector,
) -> Starlette:
    """The emulator as an ASGI app, bound to an org, its credentials, counters and faults."""
    api = _Api(org, credentials, stats, faults)
    data = "/services/data/{version}"

    def route(path: str, name: str, handler: Handler, methods: list[str]) -> list[Route]:
        endpoint = _endpoint(api, name, handler)
        paths = [path, path + "/"] if not path.endswith("/") else [path]
        return [Route(p, endpoint, methods=methods) for p in paths]

    routes = [
        Route("/services/data", _versions, methods=["GET"]),
        Route("/services/data/", _versions, methods=["GET"]),
        Route("/services/oauth2/token", _token, methods=["POST"]),
        Route("/services/Soap/u/{version}", _soap_login, methods=["POST"]),
        Route("/__sandbox/limits", _set_limits, methods=["POST"]),
        *control_routes(stats, faults),
        *route(data, "resources", _resources, ["GET"]),
        *route(f"{data}/query", "query", _query_live, ["GET"]),
        *route(f"{data}/queryAll", "queryAll", _query_all, ["GET"]),
        *route(f"{data}/query/{{cursor}}", "queryMore", _query_more, ["GET"]),
        *route(f"{data}/queryAll/{{cursor}}", "queryAllMore", _query_more, ["GET"]),
        *route(f"{data}/limits", "limits", _limits, ["GET"]),
        *route(f"{data}/sobjects", "sobjects", _global_describe, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}", "sobjects/create", _create, ["POST"]),
        *route(f"{data}/sobjects/{{sobject}}", "sobjects/metadata", _metadata, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/describe", "describe", _describe, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/deleted", "getDeleted", _deleted, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/updated", "getUpdated", _updated, ["GET"]),
        *route(
            f"{data}/sobjects/{{sobject}}/{{record_id}}",
            "sobjects/record",
            _record,
            ["GET", "PATCH", "DELETE"],
        ),
        *route(
            f"{data}/composite/sobjects",
            "composite/sobjects",
            _collections,
            ["POST", "PATCH", "DELETE"],
        ),
        *route(
            f"{data}/tooling/sobjects/CustomField",
            "tooling/sobjects/CustomField",
            _tooling_field,
            ["POST"],
        ),
        *route(f"{data}/tooling/query", "tooling/query", _tooling_query, ["GET"]),
        *api.bulk.routes(route, data),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    return app


def now_iso() -> str:
    """The current UTC time in Salesforce's format."""
    return format_datetime(int(datetime.now(UTC).timestamp() * 1000))
