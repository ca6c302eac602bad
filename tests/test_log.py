"""Logging: secrets never reach a log line; run ids tag every line; JSON when not a terminal."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from icp_sync import log


def test_secret_values_and_secret_keys_are_masked() -> None:
    """A known secret is masked wherever it appears, and secret-named keys are masked too."""
    stream = io.StringIO()
    log.configure(fmt="json", stream=stream, secrets=["tok-123456"])

    log.get_logger().info(
        "connected",
        url="https://x/?access_token=tok-123456",
        password="hunter2",
        nested={"client_secret": "abc", "fine": "ok"},
        items=["tok-123456"],
    )
    line = json.loads(stream.getvalue())

    assert "tok-123456" not in stream.getvalue()
    assert line["url"] == "https://x/?access_token=***"
    assert line["password"] == "***"
    assert line["nested"] == {"client_secret": "***", "fine": "ok"}
    assert line["items"] == ["***"]


def test_run_id_is_bound_to_every_line() -> None:
    """After bind_run, each line carries the run id and command."""
    stream = io.StringIO()
    log.configure(fmt="json", stream=stream)
    run_id = log.bind_run("sync")

    log.get_logger().info("one")
    log.get_logger().warning("two")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]

    assert [(x["run_id"], x["command"]) for x in lines] == [(run_id, "sync")] * 2


def test_level_filters_lines() -> None:
    """Lines below the configured level are not written."""
    stream = io.StringIO()
    log.configure(level="warning", fmt="json", stream=stream)

    log.get_logger().info("quiet")
    log.get_logger().error("loud")

    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["loud"]


def test_events_can_be_captured_in_tests() -> None:
    """structlog's capture works with our loggers (tests assert on structured events)."""
    with structlog.testing.capture_logs() as captured:
        log.get_logger().info("object_synced", inserted=3)

    assert captured == [{"event": "object_synced", "inserted": 3, "log_level": "info"}]


def test_a_secret_registered_at_runtime_is_masked_from_then_on() -> None:
    """A token obtained after logging was configured is masked once registered."""
    stream = io.StringIO()
    log.configure(fmt="json", stream=stream)
    log.mask("00D!runtime-token-abcdef")

    log.get_logger().info("call", header="Bearer 00D!runtime-token-abcdef")

    assert "runtime-token" not in stream.getvalue()
    assert "Bearer ***" in stream.getvalue()


def _fail_with(secret: str) -> None:
    token = secret  # a local the traceback renderer may show
    raise RuntimeError(f"refused {token[:3]}...{token}")


def test_a_logged_exception_never_shows_a_secret_in_any_format() -> None:
    """Tracebacks (with locals, in console and JSON form) are masked after rendering."""
    for fmt in ("console", "json"):
        stream = io.StringIO()
        log.configure(fmt=fmt, stream=stream, secrets=["sk-live-9876543210"])
        try:
            _fail_with("sk-live-9876543210")
        except RuntimeError:
            log.get_logger().exception("failed")

        assert "refused" in stream.getvalue()
        assert "sk-live-9876543210" not in stream.getvalue(), fmt


_KEY_LINES = [f"MIIE{i}" + "Qk9hY2tlZC1ieS1hLXRlc3Q" * 2 + f"{i:03d}" for i in range(5)]
_PEM = "\n".join(["-----BEGIN PRIVATE KEY-----", *_KEY_LINES, "-----END PRIVATE KEY-----"])


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(_PEM, id="multi-line-private-key"),
        pytest.param('pa"ss\\word-123456', id="quote-and-backslash"),
        pytest.param("pässwörd-123456", id="non-ascii"),
    ],
)
@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_secret_is_masked_in_every_escaped_form(secret: str, fmt: str) -> None:
    """A secret escaped by repr or JSON, or a private key split over lines, never shows in a
    logged exception with locals or in a logged ``repr`` of an error."""
    stream = io.StringIO()
    log.configure(fmt=fmt, stream=stream, secrets=[secret])
    try:
        _fail_with(secret)
    except RuntimeError as exc:
        log.get_logger().exception("failed")
        log.get_logger().error("command_crashed", error=repr(exc))
    out = stream.getvalue()

    assert "refused" in out
    pieces = _KEY_LINES if "\n" in secret else [secret]
    for piece in pieces:
        for form in {piece, repr(piece)[1:-1], json.dumps(piece)[1:-1]}:
            assert form not in out, (fmt, form)
