"""Salesforce emulator logins: the OAuth 2.0 token endpoint and the SOAP partner login.

The token endpoint takes the client credentials, password and JWT bearer grants.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.salesforce.api import SalesforceApi, SalesforceCredentials, base_url

__all__ = ["soap_login", "token"]


async def token(request: Request) -> JSONResponse:
    """``POST /services/oauth2/token``: client credentials, password or JWT bearer grant."""
    api: SalesforceApi = request.app.state.api
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
    base = base_url(request)
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


async def soap_login(request: Request) -> Response:
    """``POST /services/Soap/u/{version}``: the partner ``login`` call; a session id."""
    api: SalesforceApi = request.app.state.api
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
    base = base_url(request)
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
