"""The report page: escaped CRM text, neutralised CSV cells, one plotly.js, every chart."""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote

import pandas as pd

from icp_sync.report.html import csv_text, data_links, render
from tests.planted import planted_report


def test_the_page_embeds_plotly_once_and_draws_every_chart() -> None:
    """Self-contained: one inline plotly.js, five charts, no external script."""
    page = render(planted_report())
    assert page.count("<script src=") == 0
    assert page.count("Plotly.newPlot") == 5
    for element in ("chart-green-share", "chart-tier-mix", "chart-leaderboard", "chart-tal-funnel"):
        assert f'id="{element}"' in page


def test_crm_text_is_escaped_in_the_page() -> None:
    """A signatory or segment holding markup is shown as text, never run as HTML."""
    report = planted_report()
    hostile = report.revealed.disagreements.copy()
    hostile.loc[hostile.index[0], "segment"] = "<script>alert(1)</script>"
    page = render(
        dataclasses.replace(
            report, revealed=dataclasses.replace(report.revealed, disagreements=hostile)
        )
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Dana &lt;b&gt;Lee&lt;/b&gt;" in page


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    """=HYPERLINK(...) in a segment name gets a leading apostrophe; negative numbers do not."""
    frame = pd.DataFrame({"segment": ['=HYPERLINK("http://x")', "Healthcare"], "lift": [-0.2, 1.3]})
    text = csv_text(frame)
    assert "'=HYPERLINK" in text
    assert ",-0.2" in text


def test_every_table_has_a_data_link_holding_its_csv() -> None:
    """The data: links decode to the same CSV the files hold."""
    report = planted_report()
    links = data_links(report)
    assert set(links) == set(report.tables())
    decoded = unquote(links["lift"].split(",", 1)[1])
    assert decoded == csv_text(report.tables()["lift"])


def test_without_a_commitment_the_page_says_what_it_measured_against() -> None:
    """Terms from the active version, not a commitment: a visible warning."""
    report = planted_report()
    terms = dataclasses.replace(report.adherence.terms, source="active version")
    adherence = dataclasses.replace(report.adherence, terms=terms)
    page = render(dataclasses.replace(report, adherence=adherence))
    assert "No commitment is recorded for this period" in page
