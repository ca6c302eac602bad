"""The dashboard over HTTP: refused without credentials, served with a token or proxy header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from icp_sync.report.dashboard import COOKIE, dashboard_routes
from tests.planted import planted_report
from tests.report.serve import serving

TOKEN = "s3cret-token-value"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """A dashboard with a token and a trusted header, served on a free port."""
    routes = dashboard_routes(
        planted_report, token=SecretStr(TOKEN), trusted_header="X-Forwarded-User"
    )
    with serving(list(routes)) as url:
        yield url


@pytest.mark.parametrize(
    "path",
    ["/dashboard", "/dashboard/report.json", "/dashboard/csv/lift.csv", "/dashboard/plotly.js"],
)
def test_without_credentials_every_page_is_refused(base: str, path: str) -> None:
    """No token, cookie or header: 401 and no report content."""
    response = requests.get(base + path, timeout=30, allow_redirects=False)
    assert response.status_code == 401
    assert "Green" not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
        pytest.param({"X-Forwarded-User": ""}, id="empty-proxy-header"),
        pytest.param({"X-Forwarded-Host": "cfo"}, id="another-proxy-header"),
        pytest.param({"Cookie": f"{COOKIE}={TOKEN}"}, id="token-as-cookie"),
    ],
)
def test_wrong_credentials_are_refused(base: str, headers: dict[str, str]) -> None:
    """A wrong token, another scheme, a blank header or a forged cookie are all refused."""
    response = requests.get(base + "/dashboard/report.json", headers=headers, timeout=30)
    assert response.status_code == 401


def test_a_bearer_token_gets_the_page_with_its_charts(base: str) -> None:
    """With the token the page holds every chart and links its CSVs and plotly.js."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = requests.get(base + "/dashboard", headers=headers, timeout=60)
    assert response.status_code == 200
    page = response.text
    for element in ("chart-green-share", "chart-tier-mix", "chart-leaderboard", "chart-tal-funnel"):
        assert f'id="{element}"' in page
    assert 'src="/dashboard/plotly.js"' in page
    assert "/dashboard/csv/lift.csv" in page
    assert "Red segment being closed" in page


def test_a_token_link_sets_a_cookie_and_drops_the_token_from_the_address(base: str) -> None:
    """?token= answers with a redirect to the bare page and an HttpOnly session cookie."""
    session = requests.Session()
    first = session.get(base + "/dashboard?token=" + TOKEN, timeout=60, allow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/dashboard"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie
    assert session.get(base + "/dashboard/report.json", timeout=60).status_code == 200


def test_a_trusted_proxy_header_lets_a_request_in(base: str) -> None:
    """The configured reverse-proxy header authenticates."""
    response = requests.get(
        base + "/dashboard/csv/teams.csv", headers={"X-Forwarded-User": "cfo"}, timeout=60
    )
    assert response.status_code == 200
    assert response.text.splitlines()[0].startswith("team,")


def test_the_json_is_the_report_document(base: str) -> None:
    """report.json carries the headline and the revealed drift."""
    document = requests.get(
        base + "/dashboard/report.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ).json()
    assert document["headline"]["new_deals"] > 0
    assert document["revealed"]["disagreements"][0]["segment"] == "Government"


def test_the_dashboard_is_read_only(base: str) -> None:
    """Nothing but GET is routed, even with the token."""
    response = requests.post(
        base + "/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 405


def test_without_a_token_or_header_configured_the_dashboard_is_off() -> None:
    """No way to authenticate configured: 403 for everyone, with what to set."""
    routes = dashboard_routes(planted_report, token=None, trusted_header=None)
    with serving(list(routes)) as url:
        response = requests.get(url + "/dashboard", timeout=30)
    assert response.status_code == 403
    assert "[dashboard]" in response.text


def test_an_unknown_table_is_not_found(base: str) -> None:
    """A CSV name that is no table: 404."""
    response = requests.get(
        base + "/dashboard/csv/secrets.csv",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 404
