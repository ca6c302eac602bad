"""``POST composite``: up to 25 subrequests in one API call, as Salesforce's Composite resource.

Body ``{"allOrNone": bool, "collateSubrequests": bool, "compositeRequest": [{"method", "url",
"referenceId", "body"?, "httpHeaders"?}]}``; the answer is always 200 with
``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}`` in
request order. The whole call counts as one API call. Supported subrequests, as documented:
sObject resources (rows, collections, describe, getDeleted / getUpdated), ``query`` and
``queryAll`` (at most 5 query operations, ``queryMore`` pages included). Later subrequests may
refer to earlier results with ``@{refId.field}`` (``@{refQuery.records[0].Id}``); a reference
to a failed or missing result halts that subrequest (``PROCESSING_HALTED``). With
``allOrNone`` a failure halts every other subrequest; the sandbox cannot roll back writes, so
it refuses ``allOrNone`` with writing subrequests instead of pretending to.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message

from icp_sync.sandbox.salesforce.api import SalesforceApi, errors

__all__ = ["MAX_QUERIES", "MAX_SUBREQUESTS", "Composite"]

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5

_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_QUERY = re.compile(r"^/services/data/v[0-9.]+/query(All)?(/|\?|$)")
_SUPPORTED = re.compile(r"^/services/data/v[0-9.]+/(sobjects|query|queryAll|composite/sobjects)")


class _HaltedError(Exception):
    """A subrequest refers to a result that does not exist."""


class Composite:
    """The composite handler, dispatching subrequests to ``inner`` (the uncounted routes)."""

    def __init__(self, inner: ASGIApp) -> None:
        self._inner = inner

    async def __call__(self, api: SalesforceApi, request: Request) -> Response:
        """Run the subrequests in order; one ``compositeResponse`` entry each."""
        try:
            body = await request.json()
        except ValueError:
            return errors(400, "JSON_PARSER_ERROR", "The request body is not JSON")
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        problem = _invalid(subrequests)
        if problem:
            return errors(400, "INVALID_INPUT", problem)
        assert isinstance(subrequests, list)
        all_or_none = bool(body.get("allOrNone", False))
        if all_or_none and any(str(s["method"]).upper() != "GET" for s in subrequests):
            return errors(
                400,
                "INVALID_INPUT",
                "sandbox: allOrNone with writing subrequests is not emulated (no rollback)",
            )
        results: dict[str, Any] = {}
        answers: list[dict[str, Any]] = []
        failed = False
        for sub in subrequests:
            reference = str(sub["referenceId"])
            try:
                url = _resolve(str(sub["url"]), results)
                payload = _resolve_body(sub.get("body"), results)
            except _HaltedError as exc:
                answers.append(_halted(reference, str(exc)))
                failed = True
                continue
            status, headers, answer = await self._dispatch(
                request, str(sub["method"]).upper(), url, payload, sub.get("httpHeaders") or {}
            )
            if status < 400:
                results[reference] = answer
            failed = failed or status >= 400
            answers.append(
                {
                    "body": answer,
                    "httpHeaders": headers,
                    "httpStatusCode": status,
                    "referenceId": reference,
                }
            )
        if all_or_none and failed:
            answers = [
                a
                if a["httpStatusCode"] >= 400
                else _halted(
                    a["referenceId"],
                    "The transaction was rolled back since another operation in the same "
                    "transaction failed.",
                )
                for a in answers
            ]
        return JSONResponse({"compositeResponse": answers})

    async def _dispatch(
        self,
        request: Request,
        method: str,
        url: str,
        payload: Any,
        extra_headers: dict[str, Any],
    ) -> tuple[int, dict[str, str], Any]:
        path, _, query = url.partition("?")
        data = b"" if payload is None else json.dumps(payload).encode()
        headers = [
            (k, v)
            for k, v in request.scope["headers"]
            if k.lower() in (b"authorization", b"host", b"user-agent")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        headers += [(str(k).lower().encode(), str(v).encode()) for k, v in extra_headers.items()]
        state: dict[str, Any] = {}
        scope = {
            **{k: v for k, v in request.scope.items() if k in ("server", "client", "scheme")},
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "path": unquote(path),
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "state": state,
        }
        sent = False
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._inner(scope, receive, send)
        # the outer call is the one counted: it reports the records its subrequests touched
        request.state.read += int(state.get("read", 0))
        request.state.written += int(state.get("written", 0))
        raw = b"".join(chunks)
        status = int(started.get("status", 500))
        kept = {
            k.decode(): v.decode()
            for k, v in started.get("headers", [])
            if k.lower() in (b"location", b"etag", b"last-modified")
        }
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode("utf-8", "replace")
        return status, kept, answer


def _invalid(subrequests: Any) -> str | None:  # noqa: PLR0911 (one return per rule)
    """Why the list of subrequests is refused, or ``None``."""
    if not isinstance(subrequests, list) or not subrequests:
        return "compositeRequest: a non-empty list of subrequests is required"
    if len(subrequests) > MAX_SUBREQUESTS:
        return f"compositeRequest: at most {MAX_SUBREQUESTS} subrequests, got {len(subrequests)}"
    seen: set[str] = set()
    queries = 0
    for index, sub in enumerate(subrequests):
        if not isinstance(sub, dict) or not all(k in sub for k in ("method", "url", "referenceId")):
            return f"compositeRequest[{index}]: method, url and referenceId are required"
        reference = str(sub["referenceId"])
        if reference in seen:
            return f"compositeRequest[{index}]: duplicate referenceId {reference}"
        seen.add(reference)
        url = str(sub["url"])
        if not _SUPPORTED.match(url):
            return f"compositeRequest[{index}]: {url} is not supported in a composite request"
        queries += bool(_QUERY.match(url))
    if queries > MAX_QUERIES:
        return f"compositeRequest: at most {MAX_QUERIES} query operations, got {queries}"
    return None


def _lookup(results: dict[str, Any], reference: str, path: str) -> Any:
    if reference not in results:
        raise _HaltedError(f"Invalid reference specified. No value for {reference}.{path} found")
    value = results[reference]
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError):
            raise _HaltedError(
                f"Invalid reference specified. No value for {reference}.{path} found"
            ) from None
    return value


def _resolve(text: str, results: dict[str, Any]) -> str:
    return _REFERENCE.sub(lambda m: str(_lookup(results, m.group(1), m.group(2))), text)


def _resolve_body(body: Any, results: dict[str, Any]) -> Any:
    if isinstance(body, str):
        whole = _REFERENCE.fullmatch(body)
        return (
            _lookup(results, whole.group(1), whole.group(2)) if whole else _resolve(body, results)
        )
    if isinstance(body, dict):
        return {k: _resolve_body(v, results) for k, v in body.items()}
    if isinstance(body, list):
        return [_resolve_body(v, results) for v in body]
    return body


def _halted(reference: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }
