"""Matching HubSpot companies onto Salesforce Accounts: rules, their order, ambiguity."""

from __future__ import annotations

import pandas as pd

from icp_sync.matching import domain_key, match_accounts, name_key

ACCOUNTS = pd.DataFrame(
    {
        "account_id": [
            "001A00000000001AAA",
            "001A00000000002AAA",
            "001A00000000003AAA",
            "001A00000000004AAA",
            "001A00000000005AAA",
        ],
        "domain": ["acme.com", "globex.io", None, "twin.com", "twin.com"],
        "name": ["Acme Inc", "Globex", "Initech GmbH", "Twin One", "Twin Two"],
        "country": ["United States", "Germany", "Germany", "France", "France"],
    }
)


def test_the_sync_id_wins_then_the_domain_then_name_and_country() -> None:
    """Each rule applies in order; a 15-character id matches its 18-character Account."""
    report = match_accounts(
        ACCOUNTS,
        {
            "1": {"salesforce_id": "001A00000000002", "domain": "acme.com"},
            "2": {"domain": "https://www.ACME.com/about"},
            "3": {"name": "INITECH, Ltd.", "country": "germany"},
            "4": {"name": "Nobody", "country": "Germany", "domain": "nobody.example"},
        },
    )

    assert report.matched == {
        "1": "001A00000000002AAA",
        "2": "001A00000000001AAA",
        "3": "001A00000000003AAA",
    }
    assert report.by == {"salesforce_id": 1, "domain": 1, "name_country": 1}
    assert report.unmatched_hubspot == ("4",)
    assert report.unmatched_salesforce == 2
    assert report.counts()["shared"] == 0


def test_a_key_naming_several_accounts_is_ambiguous_not_guessed() -> None:
    """Two Accounts share a domain: the company is reported ambiguous and left unmatched."""
    report = match_accounts(ACCOUNTS, {"9": {"domain": "twin.com", "name": "Twin One"}})

    assert report.matched == {}
    assert report.ambiguous == {"9": "domain"}
    assert report.counts()["ambiguous"] == 1


def test_keys_ignore_case_scheme_and_legal_form() -> None:
    """Domains lose scheme, www and path; names lose case, punctuation and legal forms."""
    assert domain_key("HTTP://www.Example.com:8080/x?y") == "example.com"
    assert domain_key(None) == ""
    assert name_key("ACME, Inc.", "US") == name_key("acme", "us")
    assert name_key("GmbH", "DE") == ""
