"""The whole sync under chaos: every fault on, ``kill -9`` during extract and apply, users
editing and deleting between and during cycles, client clocks 30 s off. Afterwards the mirror
equals the org, every planned write landed exactly once, and no user's edit is lost.

Every cycle is a real ``icp-sync sync`` process (:func:`chaos_support.skewed_cli`) whose clock
is the org's (which the test moves forward between cycles) 30 s slow or fast, by turns. Knobs:
``ICP_SYNC_CHAOS_SEEDS`` (N: seeds 1..N, or a comma list such as ``4,7``; default 1),
``ICP_SYNC_CHAOS_CYCLES`` (chaos cycles per seed, default 8) and ``ICP_SYNC_CHAOS_ACCOUNTS``
(default 150).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from icp_sync.config import load_settings
from icp_sync.model import CrmObject
from icp_sync.sandbox.faults import PROFILES, FaultProfile
from icp_sync.sandbox.salesforce.schema import RecordError
from icp_sync.sandbox.service import Sandbox
from icp_sync.store import Store
from tests.conftest import SandboxFactory
from tests.connectors.chaos_support import (
    SKEW_ENV,
    SKEWED_CLI,
    HandEdit,
    Journal,
    Verdict,
    count_faults,
    judge,
    mirror_problems,
    skews_seen,
)

ROOT = Path(__file__).resolve().parents[2]
_SEEDS = os.environ.get("ICP_SYNC_CHAOS_SEEDS", "1")
SEEDS = (
    [int(s) for s in _SEEDS.split(",") if s.strip()]
    if "," in _SEEDS
    else list(range(1, int(_SEEDS) + 1))
)
CYCLES = max(2, int(os.environ.get("ICP_SYNC_CHAOS_CYCLES", "8")))
ACCOUNTS = int(os.environ.get("ICP_SYNC_CHAOS_ACCOUNTS", "150"))
SKEW_S = 30.0
DAYS_3 = 3 * 86_400.0
TIERS = ("Green", "Yellow", "Red")
OWNED = ("ICP_Tier__c", "ICP_Score__c", "ICP_Segment__c")
FAULT_KINDS = ("server_error", "rate_limited", "lock_row", "validation", "session_expired")
FAULT_ERRORS = ("ConnectorError", "RetriableConnectorError", "SessionExpiredError")
"""What a cycle may fail with under faults (exit 1); anything else is a failure of the test."""
DURING_MOST = 30
"""Most user actions during one cycle (a slow cycle must not pile up deletions)."""
DURING = {  # what users do while a cycle runs, and how often
    "name": 3,
    "owned": 4,
    "override": 2,
    "employees": 1,
    "soft_delete": 1,
    "hard_delete": 1,
    "insert": 1,
    "opp_edit": 2,
    "opp_delete": 1,
}


class Users:
    """Account owners and admins editing, deleting and inserting in the org."""

    def __init__(self, sandbox: Sandbox, journal: Journal, seed: int) -> None:
        self.org = sandbox.org
        self.journal = journal
        self.rng = random.Random(f"users-{seed}")
        self.names: dict[str, str] = {}  # account -> the Name a user gave it last
        self.hand: list[HandEdit] = []
        self.done: Counter[str] = Counter()
        accounts = sorted(self.org.objects["Account"].records)
        # tier overrides on every other account; hand edits of the tier on the others only
        self.override_pool = set(accounts[::2])

    def _live(self, sobject: str) -> list[str]:
        return sorted(i for i, r in self.org.objects[sobject].records.items() if not r["IsDeleted"])

    def act(self, kind: str, during: bool, rng: random.Random | None = None) -> None:
        """One user action of ``kind`` on a random live record."""
        rng = rng or self.rng
        org = self.org
        with org.lock:
            sobject = "Opportunity" if kind.startswith("opp_") else "Account"
            live = self._live(sobject)
            if kind == "override":
                live = [i for i in live if i in self.override_pool]
            if not live:
                return
            rid = rng.choice(live)
            owner = str(org.objects[sobject].records[rid]["OwnerId"])
            tag = f"{self.journal.cycle}-{rng.randrange(10**6)}"
            try:
                self._do(kind, rid, owner, tag, rng)
            except RecordError as exc:  # not expected: every pick is live, under the lock
                self.done[f"refused:{kind}:{exc.code}"] += 1
                return
        self.done[f"{'during' if during else 'between'}:{kind}"] += 1

    def _do(self, kind: str, rid: str, owner: str, tag: str, rng: random.Random) -> None:
        org = self.org
        if kind in ("name", "backdated"):
            name = f"{'Late' if kind == 'backdated' else 'Chaos'} {tag}"
            stamp = org.now_ms() - 90_000 if kind == "backdated" else None  # committed late
            org.update("Account", rid, {"Name": name}, user=owner, stamp=stamp)
            self.names[rid] = name
        elif kind == "owned":
            fields = [f for f in OWNED if f != "ICP_Tier__c" or rid not in self.override_pool]
            name = rng.choice(fields)
            held = org.objects["Account"].records[rid].get(name)
            if name == "ICP_Tier__c":
                value: Any = rng.choice([t for t in TIERS if t != held])
            elif name == "ICP_Score__c":
                value = rng.choice([s for s in range(0, 101, 7) if held is None or s != held])
            else:
                value = f"Hand segment {tag}"
            org.update("Account", rid, {name: value}, user=owner)
            journal = self.journal
            self.hand.append(
                HandEdit(journal.seq, journal.cycle, journal.running, rid, name, value)
            )
        elif kind == "override":
            held = org.objects["Account"].records[rid].get("ICP_Tier_Override__c")
            value = rng.choice([t for t in (*TIERS, None) if t != held])
            org.update("Account", rid, {"ICP_Tier_Override__c": value}, user=owner)
        elif kind == "employees":
            org.update("Account", rid, {"NumberOfEmployees": rng.randint(5, 20_000)}, user=owner)
        elif kind == "soft_delete":
            org.delete("Account", rid, user=owner)
        elif kind == "hard_delete":
            org.hard_delete("Account", rid)
        elif kind == "insert":
            new = org.insert(
                "Account", {"Name": f"New {tag}", "ICP_TAL__c": False}, user=org.loader_user
            )
            if rng.random() < 0.5:
                self.override_pool.add(new)
        elif kind == "opp_edit":
            org.update("Opportunity", rid, {"Name": f"Deal {tag}"}, user=owner)
        elif kind == "opp_delete":
            org.delete("Opportunity", rid, user=owner)
        elif kind == "opp_hard_delete":
            org.hard_delete("Opportunity", rid)
        else:
            raise ValueError(kind)

    def between(self, cycle: int) -> None:
        """What users do between two cycles; then time passes."""
        for kind, times in (("name", 3), ("backdated", 1), ("employees", 2), ("owned", 3)):
            for _ in range(times):
                self.act(kind, during=False)
        # overrides drive the write-back's size: every eighth cycle above the bulk threshold
        for _ in range(40 if cycle % 8 == 1 else self.rng.choice((2, 5, 10))):
            self.act("override", during=False)
        for kind in ("soft_delete", "hard_delete", "insert", "opp_edit", "opp_hard_delete"):
            self.act(kind, during=False)
        if cycle % 3 == 2:
            self.done["purged"] += self.org.purge("Account") + self.org.purge("Opportunity")
        self.org.advance(self.rng.uniform(61, 180))

    def during(self, stop: threading.Event, rng: random.Random) -> None:
        """Act at random moments until ``stop`` is set (run on a thread during a cycle)."""
        kinds, weights = list(DURING), list(DURING.values())
        for _ in range(DURING_MOST):
            if stop.wait(rng.uniform(0.02, 0.25)):
                return
            self.act(rng.choices(kinds, weights)[0], during=True, rng=rng)


@dataclass
class Run:
    """One `icp-sync sync` process: how it ended, and where it was killed."""

    mode: str
    skew: float
    launched: datetime  # the org's clock at launch
    code: int | None = None
    killed: str | None = None  # the phase it was killed in
    written: int | None = None
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        """The kind of error the command failed with, or "Traceback" for a crash."""
        if any(line.startswith("Traceback") for line in self.stderr):
            return "Traceback"
        failed = [json.loads(line) for line in self.stderr if '"command_failed"' in line]
        return str(failed[-1].get("kind")) if failed else None


class Chaos:
    """Runs cycles against one sandbox and keeps what happened."""

    def __init__(self, sandbox: Sandbox, config: Path, users: Users, seed: int) -> None:
        self.sandbox = sandbox
        self.config = config
        self.users = users
        self.journal = users.journal
        self.rng = random.Random(f"chaos-{seed}")
        self.seed = seed
        self.runs: list[Run] = []

    def _write_calls(self) -> int:
        return sum(_write_calls(self.sandbox).values())

    def _phase(self, run: Run, calls_before: int) -> str:
        cycle = self.journal.cycle
        wrote = self.journal.integration_writes(cycle) or self._write_calls() > calls_before
        if wrote or any(e.startswith("writeback") for e in run.events):
            return "apply"
        if self.journal.reads_in(cycle) and run.events.count("object_synced") < 2:
            return "extract"
        return "plan" if self.journal.reads_in(cycle) else "start"

    def _quiet(self) -> None:
        """Wait until the sandbox has finished what a killed process left in flight."""
        last, still = -1, 0
        while still < 3:
            calls = self.sandbox.salesforce_stats.snapshot()["calls"]
            still = still + 1 if calls == last else 0
            last = calls
            time.sleep(0.05)

    def sync(self, mode: str, skew: float, *, during: bool, argv: tuple[str, ...] = ()) -> Run:
        """One ``icp-sync`` process with its clock ``skew`` seconds off the org's (which tests
        move forward: the client's moves with it). ``kill-extract``:
        SIGKILL in (or just after) its first or second read; ``kill-apply``: once its first
        write call or its n-th record write has reached the org."""
        env = {
            **os.environ,
            SKEW_ENV: str(self.sandbox.org.offset_ms / 1000 + skew),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        launched = datetime.now(UTC) + timedelta(milliseconds=self.sandbox.org.offset_ms)
        run = Run(mode=mode, skew=skew, launched=launched)
        self.runs.append(run)
        calls_before, cycle, rng = self._write_calls(), self.journal.cycle, self.rng
        at_read, in_flight, delay = rng.randint(1, 2), rng.random() < 0.5, rng.uniform(0, 0.05)
        at_write = rng.randint(1, 20) if rng.random() < 0.7 else 0  # 0: the first write call
        self.journal.running = True
        args, started = argv or ("sync", "--json", "--config", str(self.config)), time.monotonic()
        self.journal.mark(f"cycle {cycle}: {args[0]} started ({mode}, clock {skew:+.0f} s)")
        process = subprocess.Popen(
            [sys.executable, "-c", SKEWED_CLI, *args],
            cwd=self.config.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lock, kill_at = threading.Lock(), [math.inf]

        def kill() -> None:
            # once, from this thread or a sandbox thread (which holds the org: never wait)
            if lock.acquire(blocking=False) and process.poll() is None:
                run.killed = self._phase(run, calls_before)
                self.journal.mark(f"cycle {cycle}: sync killed ({run.killed})")
                os.kill(process.pid, signal.SIGKILL)

        def on_read(reads: int) -> None:
            if reads >= at_read and kill_at[0] == math.inf:
                kill_at[0] = time.monotonic() + delay
                if in_flight:
                    kill()  # the process dies waiting for this read's answer

        if mode == "kill-extract":
            self.journal.on_read = on_read
        out: list[str] = []
        readers = [
            threading.Thread(target=lambda: out.append(process.stdout.read())),  # type: ignore[union-attr]
            threading.Thread(target=self._log_lines, args=(process, run)),
        ]
        stop = threading.Event()
        editor = threading.Thread(
            target=self.users.during, args=(stop, random.Random(f"{self.seed}-{cycle}-{mode}"))
        )
        for thread in [*readers, *([editor] if during else [])]:
            thread.start()
        deadline = time.monotonic() + 240
        try:
            while process.poll() is None:
                assert time.monotonic() < deadline, f"cycle {cycle} hung:\n" + "".join(run.stderr)
                if mode == "kill-apply":
                    writes = len(self.journal.integration_writes(cycle))
                    wrote = writes >= at_write if at_write else self._write_calls() > calls_before
                    kill_at[0] = min(kill_at[0], 0 if wrote else math.inf)
                if time.monotonic() >= kill_at[0]:
                    kill()
                time.sleep(0.003)
            run.code = process.wait(timeout=60)
            self.journal.mark(f"cycle {cycle}: {args[0]} ended (exit {run.code})")
            for thread in readers:
                thread.join(timeout=60)
            for stream in (process.stdout, process.stderr):
                stream.close()  # type: ignore[union-attr]
            self._quiet()
        finally:
            self.journal.on_read = None
            stop.set()
            if during:
                editor.join()
            self.journal.running = False
        run.seconds = time.monotonic() - started
        if run.killed is None and out and out[0].strip().startswith("{"):
            run.written = int(json.loads(out[0])["records_written"])
        return run

    @staticmethod
    def _log_lines(process: subprocess.Popen[str], run: Run) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            run.stderr.append(line)
            if line.startswith("{") and '"event": "' in line:
                run.events.append(line.split('"event": "', 1)[1].split('"', 1)[0])


def _config(sandbox: Sandbox, path: Path) -> Path:
    config = sandbox.write_config(path)
    text = config.read_text(encoding="utf-8")
    text = text.replace("[store]\n", "[store]\nlease_ttl_s = 5\nlease_wait_s = 120\n")
    text = text.replace("ca_file =", "bulk_write_threshold = 20\nca_file =", 1)
    # the deletions are real: the guard against a partial export must not stop the chaos
    text += '\n[writeback]\nmanual_edits = "keep"\n\n[guards]\nmax_delete_share = 0.5\n'
    config.write_text(text, encoding="utf-8")
    return config


def _write_calls(sandbox: Sandbox) -> Counter[str]:
    by = sandbox.salesforce_stats.snapshot()["by_endpoint"]
    paths = {"collections": "PATCH composite/sobjects", "bulk_jobs": "POST jobs/ingest"}
    return Counter({path: by.get(name, {}).get("calls", 0) for path, name in paths.items()})


def _unless(ok: bool, problem: str) -> list[str]:
    return [] if ok else [problem]


def _explain(verdicts: list[Verdict]) -> None:
    for verdict in verdicts:
        edit = verdict.edit
        print(
            f"  {verdict.outcome}: {edit.record_id}.{edit.field} set to {edit.value!r} by hand "
            f"(#{edit.seq}, cycle {edit.cycle}, {'during' if edit.running else 'between'} "
            f"cycles), now {verdict.now!r}: {verdict.why}"
        )
        for line in verdict.timeline:
            print(f"      {line}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: f"seed{seed}")
def test_sync_under_chaos_ends_with_the_org_mirrored_and_every_edit_kept(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Killed, faulted, skewed cycles among users' edits: mirror = org, writes once, edits kept."""
    started = time.monotonic()
    faults = count_faults(monkeypatch)
    sandbox = sandbox_factory(accounts=ACCOUNTS, seed=seed, directory=tmp_path / "sandbox")
    config = _config(sandbox, tmp_path / "icp-sync.toml")
    journal = Journal(sandbox.org)
    users = Users(sandbox, journal, seed)
    chaos = Chaos(sandbox, config, users, seed)
    for argv in (("setup-fields", "--config", str(config)), ()):
        ready = chaos.sync("clean", 0, during=False, argv=argv)
        assert ready.code == 0, "".join(ready.stderr[-20:])

    # the hostile profile, sessions expiring after 8 calls (not 50) so expiry strikes mid-cycle
    profile = replace(PROFILES["hostile"], seed=seed, session_expiry_after=8)
    sandbox.salesforce_faults.set_profile(profile)
    modes = ["kill-extract", "kill-apply"] * (1 if CYCLES < 6 else 2)
    modes += chaos.rng.choices(("clean", *modes[:2]), weights=(3, 3, 4), k=CYCLES - len(modes))
    chaos.rng.shuffle(modes)
    sign = chaos.rng.choice((-1, 1))
    before = _write_calls(sandbox)
    for cycle, mode in enumerate(modes):
        journal.cycle = cycle
        users.between(cycle)
        chaos.sync(mode, sign * (-1) ** cycle * SKEW_S, during=True)  # clocks alternate
    runs, faults_seen = list(chaos.runs[2:]), dict(faults)
    paths = _write_calls(sandbox) - before

    # faults off; three days pass (refused records are due again); clean cycles converge
    sandbox.salesforce_faults.set_profile(FaultProfile())
    sandbox.org.advance(DAYS_3)
    converge: list[tuple[int | None, int | None, int]] = []
    for extra in range(6):
        journal.cycle = CYCLES + extra
        run = chaos.sync("clean", sign * (-1) ** (CYCLES + extra) * SKEW_S, during=False)
        converge.append((run.code, run.written, len(journal.integration_writes(journal.cycle))))
        if converge[-1] == (0, 0, 0):
            break

    store = Store.open(load_settings(config).store.url)
    try:
        mirror = mirror_problems(store, sandbox.org)
        names = store.mirror.load(CrmObject.ACCOUNT).set_index("account_id")["name"].to_dict()
        skews = skews_seen(store, [(r.launched, r.skew) for r in runs])
    finally:
        store.close()
    records = sandbox.org.objects["Account"].records
    names_lost = [
        f"{rid}: a user named it {name!r}, the mirror has {names.get(rid)!r}"
        for rid, name in sorted(users.names.items())
        if rid in records and not records[rid]["IsDeleted"] and names.get(rid) != name
    ]
    writes = journal.integration_writes()
    rewrites = [
        f"cycle {w.cycle} #{w.seq} {w.record_id}: {w.rewrites}" for w in writes if w.rewrites
    ]
    noops = [f"cycle {w.cycle} #{w.seq} {w.record_id}" for w in writes if not w.changed]
    verdicts = judge(journal, users.hand)
    races = [v for v in verdicts if v.outcome == "race"]
    lost = [v for v in verdicts if v.outcome == "lost"]
    kills = Counter(r.killed for r in runs if r.killed)
    print(
        f"\nchaos seed={seed} accounts={ACCOUNTS} cycles={CYCLES} "
        f"kills={dict(kills)} exits={dict(Counter(r.code for r in runs))} "
        f"skews_confirmed={dict(skews)} faults={faults_seen} "
        f"user_actions={sum(n for k, n in users.done.items() if ':' in k)} "
        f"hand_edits={len(users.hand)} verdicts={dict(Counter(v.outcome for v in verdicts))} "
        f"name_edits={len(users.names)} record_writes={len(writes)} "
        f"field_changes={sum(len(w.changed) for w in writes)} write_calls={dict(paths)} "
        f"rewrites={len(rewrites)} "
        f"noop_writes={len(noops)} converge(code,written,landed)={converge} "
        f"races={len(races)} lost={len(lost)} seconds={time.monotonic() - started:.0f}"
    )
    print(
        "  cycles: "
        + ", ".join(
            f"{r.mode}({r.skew:+.0f}s)->{r.killed or r.code} {r.seconds:.1f}s" for r in runs
        )
    )
    print(f"  user actions: {dict(sorted(users.done.items()))}")
    for run in (r for r in chaos.runs if r.code not in (0, -signal.SIGKILL) or r.failure):
        errors = [line for line in run.stderr if '"level": "error"' in line] or run.stderr
        print(f"  exit {run.code} ({run.mode}, {run.skew:+.0f} s): {''.join(errors[-2:])[:600]}")
    _explain(races + lost)

    rare = max(1, math.ceil(0.02 * len(verdicts)))
    problems = {
        "a kill in each phase": _unless(kills["extract"] * kills["apply"] > 0, f"{dict(kills)}"),
        "every fault kind injected": [k for k in FAULT_KINDS if not faults_seen.get(k)],
        "clients 30 s slow and 30 s fast (by the run history)": _unless(
            skews[-SKEW_S] * skews[SKEW_S] > 0, f"confirmed: {dict(skews)}"
        ),
        "no failure but the faults' (exit 0, killed, or 1 for a connector error)": [
            f"{r.mode} skew {r.skew}: exit {r.code}\n{''.join(r.stderr[-5:])}"
            for r in chaos.runs
            if (r.code, r.failure) not in ((0, None), (-signal.SIGKILL, None))
            and not (r.code == 1 and r.failure in FAULT_ERRORS)
        ],
        "the mirror equals the org": mirror[:30],
        "every user's Name edit is in the mirror": names_lost,
        "no field re-written with the value icp-sync had put there": rewrites[:30],
        "no write that changes nothing": noops[:30],
        "clean cycles converge: the last one writes nothing": _unless(
            converge[-1] == (0, 0, 0), f"(exit, records written, landed) per cycle: {converge}"
        ),
        "hand edits of owned fields kept (but same-field races)": [
            f"{v.edit.record_id}.{v.edit.field}: {v.why}" for v in lost
        ],
        f"same-field races are rare (at most {rare})": _unless(
            len(races) <= rare, f"{len(races)} races of {len(verdicts)} hand-edited fields"
        ),
    }
    failed = {what: found for what, found in problems.items() if found}
    assert not failed, "\n".join(f"{what}:\n  " + "\n  ".join(f) for what, f in failed.items())
