"""``icp-sync run``: the daemon. Named jobs on an APScheduler clock, one writer, clean exits.

Jobs (:func:`Daemon.jobs`), each ``max_instances=1``, coalesced, with a misfire grace:

- ``sync``: incremental cycle every ``daemon.interval_s`` (``--interval``), starting at once;
- ``full-sync``: nightly full reconciliation at ``daemon.full_sync_at`` (UTC);
- whatever the caller adds (``extra_jobs``: the weekly digest is one :class:`Job`).

After each successful cycle the ``after_sync`` hooks run in order (the compliance monitor is
one); a failing hook is logged and counted, never fails the cycle.

One writer across replicas: the first daemon to take the store's ``sync`` lease keeps it
(renewed by a heartbeat) until it exits; another daemon on the same store stays on
``standby``, writes nothing, and takes over when the lease is released or expires.

Failures: a failed cycle pauses the incremental job (one interval, doubling, capped at
``daemon.max_backoff_s``); after ``daemon.alert_after_failures`` failures in a row the
``on_alert`` sinks are told once (a log line by default) until a cycle succeeds again.

SIGTERM / SIGINT: the running cycle stops at its next committed step (a batch mirrored, a
write call recorded) and is logged as abandoned; the next start resumes from there. The
process exits 0.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from starlette.routing import BaseRoute

from icp_sync import log
from icp_sync.config import Settings
from icp_sync.errors import ConfigError, CycleInterruptedError, LeaseHeldError
from icp_sync.metrics import DaemonMetrics
from icp_sync.pipeline import (  # noqa: TID251
    SyncResult,
    dashboard,
    deliver_alerts,
    send_digest,
)
from icp_sync.pipeline.alerting import failure_alerts  # noqa: TID251
from icp_sync.pipeline.crm_task import task_sinks  # noqa: TID251
from icp_sync.pipeline.session import SyncSession  # noqa: TID251
from icp_sync.store import HeldLease, Store  # noqa: TID251
from icp_sync.web import Health, HttpServer, build_app, parse_listen

__all__ = ["AfterSync", "AlertSink", "Daemon", "Job", "product_daemon"]

AfterSync = Callable[[SyncResult], None]
"""Runs after every successful sync cycle (the compliance monitor)."""

AlertSink = Callable[[str, dict[str, Any]], None]
"""Told about repeated failures: ``sink(title, details)``."""


@dataclass(frozen=True, slots=True)
class Job:
    """A named scheduled job: ``run`` is called on ``trigger`` (an APScheduler trigger)."""

    name: str
    trigger: Any
    run: Callable[[], object]


def _log_alert(title: str, details: dict[str, Any]) -> None:
    log.get_logger().error("alert", title=title, **details)


class Daemon:
    """The scheduled sync daemon with its health and metrics endpoint.

    Args:
        settings: The validated configuration.
        store: The open state store.
        interval_s: Incremental schedule (default ``daemon.interval_s``).
        listen: ``HOST:PORT`` of the HTTP endpoint (default ``daemon.listen``; port 0: any).
        after_sync: Hooks run after each successful cycle, in order.
        extra_jobs: More scheduled jobs (the weekly digest).
        extra_routes: More HTTP routes (the dashboard).
        on_alert: Alert sinks for repeated failures (default: one error log line).
        session: The sync session (default: one over the configured connector).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        interval_s: float | None = None,
        listen: str | None = None,
        after_sync: Sequence[tuple[str, AfterSync]] = (),
        extra_jobs: Sequence[Job] = (),
        extra_routes: Sequence[BaseRoute] = (),
        on_alert: Sequence[AlertSink] = (_log_alert,),
        session: SyncSession | None = None,
    ) -> None:
        config = settings.daemon
        self.settings = settings
        self.store = store
        self.interval = float(interval_s or config.interval_s)
        self.host, self.port = parse_listen(listen or config.listen)
        self.metrics = DaemonMetrics()
        self._after_sync = list(after_sync)
        self._extra_jobs = list(extra_jobs)
        self._alerts = list(on_alert)
        self._session = session or SyncSession(settings, store)
        self._stopping = threading.Event()
        self._running = threading.Event()
        self._shut = threading.Event()
        self._cycle_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._lease: HeldLease | None = None
        self._lease_cm: Any = None
        self._cycles = 0
        self._failures = 0
        self._alerted = False
        self._resume_at: datetime | None = None
        self._last_success: datetime | None = None
        self._last_attempt = datetime.now(UTC)
        self._status = "starting"
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(config.misfire_grace_s),
            },
        )
        self._http = HttpServer(
            build_app(
                health=self.health,
                ready=self.ready,
                metrics=self.metrics.exposition,
                extra_routes=extra_routes,
            ),
            host=self.host,
            port=self.port,
        )

    def jobs(self) -> list[Job]:
        """The scheduled jobs: incremental sync, nightly full sync, then the extra ones."""
        hour, minute = (int(p) for p in self.settings.daemon.full_sync_at.split(":"))
        return [
            Job(
                "sync",
                IntervalTrigger(seconds=self.interval, timezone=UTC),
                lambda: self.run_cycle(full=False),
            ),
            Job(
                "full-sync",
                CronTrigger(hour=hour, minute=minute, timezone=UTC),
                lambda: self.run_cycle(full=True),
            ),
            *self._extra_jobs,
        ]

    def health(self) -> Health:
        """Liveness and what the last cycles did."""
        with self._state_lock:
            stalled = datetime.now(UTC) - self._last_attempt > timedelta(
                seconds=3 * self.interval + self.settings.daemon.misfire_grace_s
            )
            busy = self._cycle_lock.locked()
            status = "stalled" if stalled and not busy and self._running.is_set() else self._status
            return Health(
                status=status,
                last_success_at=self._last_success.isoformat() if self._last_success else None,
                cycles=self._cycles,
                alive=status != "stalled",
                detail={
                    "consecutive_failures": self._failures,
                    "lease_held": self._lease is not None,
                    "interval_s": self.interval,
                },
            )

    def ready(self) -> bool:
        """Ready: the scheduler runs and no stop was asked."""
        return self._running.is_set() and not self._stopping.is_set()

    def run_cycle(self, *, full: bool) -> str:
        """One scheduled cycle (the job boundary); returns its status."""
        if self._stopping.is_set():
            return "stopping"
        kind = "full" if full else "incremental"
        now = datetime.now(UTC)
        with self._state_lock:
            self._last_attempt = now
        if not full and self._resume_at is not None and now < self._resume_at:
            log.get_logger().info("cycle_backoff", resume_at=self._resume_at.isoformat())
            return "backoff"
        # the full sync waits for a running incremental one; an incremental one skips
        if not self._cycle_lock.acquire(timeout=3_600 if full else 0):
            return "busy"
        try:
            if self._stopping.is_set():
                return "stopping"
            return self._cycle(full=full, kind=kind, now=now)
        finally:
            self._cycle_lock.release()

    def _cycle(self, *, full: bool, kind: str, now: datetime) -> str:
        run_id = log.bind_run("run", uuid.uuid4().hex[:12])
        logger = log.get_logger(job=kind)
        started = time.perf_counter()
        lease = self._take_lease()
        if lease is None:
            self._finish("standby", kind=kind, started=started)
            return "standby"
        try:
            result = self._session.cycle(
                run_id=run_id, now=now, lease=lease, full=full, stop=self._stopping.is_set
            )
        except CycleInterruptedError as exc:
            logger.warning("cycle_abandoned", reason=str(exc))
            self._finish("interrupted", kind=kind, started=started)
            return "interrupted"
        except LeaseHeldError as exc:
            logger.warning("lease_lost", error=str(exc))
            self._drop_lease()
            self._finish("standby", kind=kind, started=started)
            return "standby"
        except Exception as exc:  # noqa: BLE001 (the daemon's job boundary: log, count, go on)
            self._failed(exc, kind=kind, started=started, now=now)
            return "failed"
        self._succeeded(result, kind=kind, started=started)
        return result.status

    def _take_lease(self) -> HeldLease | None:
        if self._lease is not None and self._lease.lost:
            self._drop_lease()
        if self._lease is None:
            cm = self.store.lease.hold(
                "sync",
                ttl=timedelta(seconds=self.settings.store.lease_ttl_s),
                wait=timedelta(0),
            )
            try:
                self._lease = cm.__enter__()
            except LeaseHeldError as exc:
                log.get_logger().info("standby", reason=str(exc).split(";")[0])
                return None
            self._lease_cm = cm
            log.get_logger().info("lease_taken", role="writer")
            self.metrics.leader.set(1)
        return self._lease

    def _drop_lease(self) -> None:
        cm, self._lease_cm, self._lease = self._lease_cm, None, None
        self.metrics.leader.set(0)
        if cm is not None:
            cm.__exit__(None, None, None)

    def _finish(self, status: str, *, kind: str, started: float) -> None:
        self.metrics.record_cycle(
            status=status, kind=kind, duration_s=time.perf_counter() - started
        )
        with self._state_lock:
            self._cycles += 1
            if status == "standby":
                self._status = "standby"

    def _succeeded(self, result: SyncResult, *, kind: str, started: float) -> None:
        self.metrics.record_cycle(
            status=result.status,
            kind=kind,
            duration_s=time.perf_counter() - started,
            crm=result.connector,
            api_by_endpoint=result.api_by_endpoint,
            written=result.records_written,
            rejected=result.records_rejected,
            read={str(k): v.extracted for k, v in result.objects.items()},
            budget_remaining=result.api_remaining,
        )
        at = datetime.now(UTC)
        self.metrics.last_success.set(at.timestamp())
        self.metrics.failures.set(0)
        logger = log.get_logger()
        with self._state_lock:
            recovered = self._failures
            self._cycles += 1
            self._failures = 0
            self._alerted = False
            self._resume_at = None
            self._last_success = at
            self._status = "ok"
        logger.info(
            "cycle_finished",
            status=result.status,
            full=kind == "full",
            api_calls=result.api_calls,
            records_written=result.records_written,
            read={str(k): v.extracted for k, v in result.objects.items()},
            duration_s=round(result.duration_s, 3),
        )
        if recovered:
            logger.info("sync_recovered", after_failures=recovered)
        for name, hook in self._after_sync:
            try:
                hook(result)
            except Exception as exc:  # noqa: BLE001 (a hook never fails the cycle)
                self.metrics.after_sync_errors.labels(hook=name).inc()
                logger.error("after_sync_failed", hook=name, error=repr(exc))

    def _failed(self, exc: Exception, *, kind: str, started: float, now: datetime) -> None:
        self.metrics.record_cycle(
            status="failed", kind=kind, duration_s=time.perf_counter() - started
        )
        config = self.settings.daemon
        with self._state_lock:
            self._cycles += 1
            self._failures += 1
            failures = self._failures
            pause = min(self.interval * 2 ** (failures - 1), config.max_backoff_s)
            self._resume_at = now + timedelta(seconds=pause)
            self._status = "failing"
            alert = failures >= config.alert_after_failures and not self._alerted
            self._alerted = self._alerted or alert
        self.metrics.failures.set(failures)
        log.get_logger().error(
            "cycle_failed",
            error=log.redact(str(exc)),
            kind=type(exc).__name__,
            consecutive_failures=failures,
            next_attempt=self._resume_at.isoformat(),
        )
        if alert:
            details = {
                "consecutive_failures": failures,
                "last_error": log.redact(str(exc))[:500],
                "last_success_at": self._last_success.isoformat() if self._last_success else None,
            }
            for sink in self._alerts:
                try:
                    sink(f"icp-sync: {failures} sync cycles failed in a row", details)
                except Exception as sink_error:  # noqa: BLE001 (a broken sink is logged only)
                    log.get_logger().error("alert_failed", error=repr(sink_error))

    def start(self) -> None:
        """Serve HTTP and start the scheduler (returns at once)."""
        self._http.start()
        self.port = self._http.port
        for job in self.jobs():
            first = datetime.now(UTC) if job.name == "sync" else None
            kwargs: dict[str, Any] = {"next_run_time": first} if first else {}
            self._scheduler.add_job(job.run, job.trigger, id=job.name, name=job.name, **kwargs)
        self._scheduler.start()
        self._running.set()
        log.get_logger().info(
            "daemon_started",
            listen=f"{self.host}:{self.port}",
            interval_s=self.interval,
            jobs=[j.name for j in self.jobs()],
        )

    def stop(self) -> None:
        """Ask the daemon to stop: the running cycle ends at its next committed step."""
        self._stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is asked (or ``timeout``); whether it was."""
        return self._stopping.wait(timeout)

    def shutdown(self) -> None:
        """Wait for the running job, release the lease, stop serving (once)."""
        if self._shut.is_set():
            return
        self._shut.set()
        self._stopping.set()
        log.get_logger().info("daemon_stopping")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._running.clear()
        self._drop_lease()
        self._session.close()
        self._http.stop()
        log.get_logger().info("daemon_stopped", cycles=self._cycles)

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; exit code 0 after a clean stop."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        self.start()
        try:
            while not self.wait(1.0):
                pass
        finally:
            self.shutdown()
        return 0


def product_daemon(
    settings: Settings, store: Store, *, interval_s: float | None, listen: str | None
) -> Daemon:
    """The daemon ``icp-sync run`` serves: syncs with the compliance monitor, alert delivery
    after each cycle, the weekly digest, the dashboard routes and RevOps told of failures."""

    def deliver(_: object) -> None:
        # the monitor delivers after each cycle it runs; a no-change cycle skips it, so
        # alerts waiting for a channel to come back are retried here
        with task_sinks(settings, store) as sinks:
            deliver_alerts(settings, store, datetime.now(UTC), sinks=sinks)

    def tell_revops(title: str, details: dict[str, Any]) -> None:
        _log_alert(title, details)
        failure_alerts(settings, store, title, details, now=datetime.now(UTC))

    digest = Job(
        "digest",
        CronTrigger(**settings.digest.cron(), timezone=UTC),
        lambda: send_digest(settings, store, datetime.now(UTC)),
    )
    try:
        return Daemon(
            settings,
            store,
            interval_s=interval_s,
            listen=listen,
            extra_routes=dashboard(settings),
            extra_jobs=[digest] if settings.digest.enabled else [],
            after_sync=[("alerts", deliver)],
            on_alert=[tell_revops],
        )
    except ValueError as exc:  # an unusable --listen or interval
        raise ConfigError([str(exc)]) from None
