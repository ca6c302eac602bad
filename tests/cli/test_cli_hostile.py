"""Hostile command lines and config values never end in a traceback (property-based).

Drives the real command line in-process (:func:`icp_sync.cli.run`, the body of ``main``) with
random strings, huge and negative numbers, out-of-range dates, folders, missing and binary
files and unicode, and asserts every run ends in exit code 0, 1 or 2 without a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icp_sync.cli import run

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

ACCOUNTS = "id,company,sector,staff,country\n" + "".join(
    f"a{i},Company {i},{'Retail' if i % 2 else 'Health'},{i * 40},{'DE' if i % 3 else 'US'}\n"
    for i in range(30)
)
DEALS = "id,account,stage,opened,closed,value\n" + "".join(
    f"o{i},a{i % 30},{'Won' if i % 3 else 'Lost'},2024-01-{1 + i % 28:02d},"
    f"2024-06-{1 + i % 28:02d},{1000 + i}\n"
    for i in range(60)
)
CONFIG = {
    "crm": {"connector": "files"},
    "store": {"url": "sqlite:///state.db"},
    "files": {
        "accounts": {
            "path": "accounts.csv",
            "columns": {
                "account_id": "id",
                "name": "company",
                "industry": "sector",
                "employees": "staff",
                "country": "country",
            },
        },
        "opportunities": {
            "path": "deals.csv",
            "columns": {
                "opportunity_id": "id",
                "account_id": "account",
                "stage": {"column": "stage", "values": {"Won": "won", "Lost": "lost"}},
                "created_at": "opened",
                "close_date": "closed",
                "amount": "value",
            },
        },
    },
}

text = st.text(max_size=40)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "99999999999999999999999"]),
)
dates = st.one_of(
    st.sampled_from(["0001-01-01", "1900-01-01", "1990-01-01", "9999-12-31", "2024-02-30"]),
    st.dates().map(str),
    text,
)
toml_values = st.one_of(
    text,
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(text, max_size=3),
    st.dictionaries(text, text, max_size=2),
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny export with a config, synced once; plus a folder, a binary file and a text file."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "accounts.csv").write_text(ACCOUNTS)
    (folder / "deals.csv").write_text(DEALS)
    (folder / "icp-sync.toml").write_text(tomlkit.dumps(CONFIG))
    (folder / "a-folder").mkdir()
    (folder / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "notes.txt").write_text("not toml at all = = =\n")
    assert run(["sync", "--config", str(folder / "icp-sync.toml"), "--json"]) == 0
    return folder


def _paths(folder: Path) -> st.SearchStrategy[str]:
    names = ["icp-sync.toml", "a-folder", "binary.bin", "notes.txt", "missing.toml", ""]
    return st.one_of(st.sampled_from([str(folder / n) for n in names]), text)


VERSIONS = ["v1", "v2", "v0", "V1", "v-1", "v99999999999999999999"]
COMMIT = (
    st.sampled_from(["--target-green-share", "--target", "--signatory", "--version", "--tal"]),
    text | numbers,
    st.just("--dry-run"),
)


def _assert_clean(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code = run(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, args
    assert code in (0, 1, 2), (args, code, err[-500:])


@settings(BOUNDED, max_examples=60)
@given(data=st.data())
def test_hostile_arguments_end_cleanly(
    workspace: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    """Random values for every option of every command: exit 0/1/2 and no traceback."""
    config = ["--config", data.draw(_paths(workspace), label="config")]
    args = data.draw(
        st.one_of(
            st.tuples(st.just("check")),
            st.tuples(st.just("derive"), st.just("--as-of"), dates),
            st.tuples(st.just("tal"), st.just("--size"), numbers),
            st.tuples(st.just("review"), st.just("--version"), text),
            st.tuples(st.just("review"), st.just("--period"), text),
            st.tuples(st.just("report"), st.just("--period"), text),
            st.tuples(st.just("sync"), st.sampled_from(["--json", "--dry-run", "--full"])),
            st.tuples(st.just("setup-fields"), st.just("--dry-run")),
            st.tuples(st.just("activate"), text),
            st.tuples(st.just("activate"), st.sampled_from(VERSIONS), st.just("--dry-run")),
            st.tuples(st.just("activate"), _paths(workspace), st.just("--dry-run")),
            st.tuples(st.just("activate"), st.just("v1"), st.just("--tal"), numbers),
            st.tuples(st.just("activate"), st.just("v1"), st.just("--by"), text),
            st.tuples(st.just("versions"), st.sampled_from(["--json", "--help"])),
            st.tuples(st.just("tal"), st.just("--version"), text),
            st.tuples(st.just("commit"), st.just("--period"), text, st.just("--dry-run")),
            st.tuples(st.just("commit"), st.just("--period"), st.just("2027"), *COMMIT),
            st.tuples(st.just("commit"), st.just("--definition"), _paths(workspace)),
            st.tuples(st.just("commit"), st.sampled_from(["--show", "--history"])),
            st.tuples(st.just("monitor"), st.sampled_from(["--dry-run", "--json"])),
            st.tuples(st.just("report"), st.just("--out"), _paths(workspace)),
        ),
        label="command",
    )
    _assert_clean(capsys, [*args, *config])


# every drawn value is out of range or not a number, so nothing is served or generated
bad_numbers = st.one_of(
    st.integers(max_value=99).map(str),
    st.integers(min_value=1_000_001).map(str),
    st.sampled_from(["1e309", "nan", "inf", "", "١٢٣", "99999999999999999999999"]),
    st.text(max_size=20).filter(lambda v: not v.strip().isdigit()),
)


@BOUNDED
@given(
    command=st.sampled_from(["generate", "serve"]),
    option=st.sampled_from(["--accounts", "--seed", "--salesforce-port", "--faults", "--crm"]),
    value=bad_numbers,
)
def test_hostile_sandbox_arguments_end_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, value: str
) -> None:
    """Bad sandbox options are usage errors; nothing is served or generated from them."""
    if command == "generate" and option in ("--salesforce-port", "--faults", "--crm"):
        option = "--accounts"
    # the drawn value may be valid (a free port, a seed): a bad --accounts then keeps the
    # command from generating or serving for real
    extra = [] if option == "--accounts" else ["--accounts", "-5"]
    target = "--out" if command == "generate" else "--dir"
    _assert_clean(capsys, ["sandbox", command, target, str(tmp_path), *extra, option, value])


@pytest.mark.parametrize("command", ["generate", "serve"])
@pytest.mark.parametrize("where", ["a-file", "/proc/no-such-folder/x"])
def test_a_sandbox_folder_that_cannot_be_used_ends_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, where: str
) -> None:
    """A --dir or --out that is a file or cannot be created: a one-line error, no traceback."""
    (tmp_path / "a-file").write_text("x")
    target = str(tmp_path / where) if where == "a-file" else where
    option = "--out" if command == "generate" else "--dir"
    code = run(["sandbox", command, option, target, "--accounts", "100", "--seed", "1"])
    out, err = capsys.readouterr()

    assert "Traceback" not in out + err
    assert "internal error" not in err
    assert code in (1, 2)


@settings(BOUNDED, max_examples=60)
@given(
    key=st.sampled_from(
        [
            ("store", "url"),
            ("logging", "level"),
            ("files", "accounts", "path"),
            ("files", "accounts", "encoding"),
            ("files", "accounts", "delimiter"),
            ("files", "accounts", "day_first"),
            ("files", "accounts", "columns", "employees"),
            ("files", "opportunities", "columns", "close_date"),
            ("segments", "dimensions"),
            ("segments", "min_accounts"),
            ("tal", "size"),
            ("normalize", "max_employees"),
            ("icp", "fdr"),
            ("lifecycle", "window_months"),
            ("guards", "max_delete_share"),
            ("guards", "max_retier_share"),
            ("guards",),
            ("files", "opportunities", "columns", "close_date", "format"),
            ("files", "opportunities", "day_first"),
            ("icp", "definition"),
            ("tal", "name"),
            ("files", "accounts", "where"),
            ("crm", "connector"),
            ("store",),
            ("writeback", "manual_edits"),
            ("compliance", "deal_types"),
            ("alerts", "webhook", "url"),
        ]
    ),
    value=toml_values,
    command=st.sampled_from(["check", "sync", "tal", "derive", "versions", "monitor", "review"]),
)
def test_hostile_config_values_end_cleanly(
    workspace: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    *,
    key: tuple[str, ...],
    value: object,
    command: str,
) -> None:
    """A random value for a config key: a config error (exit 2) or a clean run, no traceback."""
    document = tomllib.loads((workspace / "icp-sync.toml").read_text())
    if key[-1] == "format":  # a column's format needs the column as a table
        document["files"]["opportunities"]["columns"]["close_date"] = {"column": "closed"}
    node = document
    for part in key[:-1]:
        node = node.setdefault(part, {})
    node[key[-1]] = value
    folder = tmp_path_factory.mktemp("config")
    for name in ("accounts.csv", "deals.csv"):
        (folder / name).write_bytes((workspace / name).read_bytes())
    config = folder / "icp-sync.toml"
    config.write_text(tomlkit.dumps(document))
    _assert_clean(capsys, [command, "--config", str(config)])
