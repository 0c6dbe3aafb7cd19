"""Point-in-time recovery: the plan, its two own step kinds and its reports (spec section 9).

``barman recover --target-time T`` from the newest base backup that ended before T, into the
scratch volume ``pitr.volume`` (mounted at ``pitr.mount`` in barman's container; never the
nightly copy nor science), replayed in a temporary container (``nightly.replay``'s image and
command, ``PGPORT`` set to ``pitr.port``) until it answers, verified with ``science.verify``
and measured with ``science.rpo_sql``: the achieved point is the newest committed timestamp in
the recovered data, against T.

The run is an ordinary run (``state_dir/runs/<id>/``: ``runs list``, ``attach``, ``cancel`` and
the TUI's run view work on it); its reports are ``state_dir/pitr/<id>/report.json`` and
``report.md``. It stays ``running`` while the copy is kept up for the operator: its last step
keeps it up until ``runs cancel ID`` or ``pitr.keep_minutes``, whichever comes first (a cancel
is the normal end of that step, so the run still succeeds), then removes the container and
empties the scratch volume (it stays mounted in barman's container, so it cannot be deleted),
with audit records. A step that fails after the scratch volume was touched removes the copy too.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..clock import duration, now_iso, parse_iso_or_none, seconds_between, utc_now
from ..config import Config
from ..redact import redact_data
from ..snapshot import BackupInfo
from ..text import clean, clean_data, one_line
from . import audit, files, plans, verify
from .drill import md_block, md_cell, md_text, md_verification
from .progress import Progress, tail
from .runs import Run
from .steps import Cancelled, StepFailed, StepRunner

ACTION = "pitr"
CONTAINER = "montagu-pitr"  # the scratch copy's temporary PostgreSQL container
SCRATCH_FILE = ".montagu-pitr"  # the file script's stamp-file argument; never written
REPORTS = "pitr"  # state_dir/pitr/<id>/
# barman writes restore_command with the path it recovered into: the replay container mounts the
# scratch volume there too, so `cp <mount>/dump/barman_wal/%f %p` finds the WAL
RECOVERED_INTO = plans.DUMP_DIR
NOT_REACHED = "recovery ended before configured recovery target was reached"


# -- the request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A PITR the preflight let through: the target, the base backup to use, the facts checked."""

    target: datetime
    backup_id: str
    facts: list[str]


def parse_target(text: str | None) -> datetime | None:
    """The target time an operator typed (``2026-12-01 14:02:00+00``; without a zone: UTC), or None."""
    if not text or not text.strip() or len(text) > 64:
        return None
    try:
        return verify.parse_pg_time(text)
    except ValueError:
        return None


def target_text(moment: datetime) -> str:
    """A target time as barman and the reports get it: ISO 8601 with its offset."""
    return moment.isoformat()


def oldest_backup(backups: tuple[BackupInfo, ...]) -> BackupInfo | None:
    """The oldest finished backup (barman cannot recover to a time before its end)."""
    done = [b for b in backups if b.status == "DONE" and b.end_time is not None]
    return min(done, key=lambda b: b.end_time or utc_now()) if done else None


def base_backup_for(backups: tuple[BackupInfo, ...], target: datetime) -> BackupInfo | None:
    """The backup barman recovers ``target`` from: the newest finished one that ended before it."""
    before = [b for b in backups if b.status == "DONE" and b.end_time is not None and b.end_time < target]
    return max(before, key=lambda b: b.end_time or target) if before else None


def scratch_files(config: Config) -> dict:
    """The file script's arguments for the scratch volume (as the nightly recover's, on pitr.mount)."""
    b, p = config.barman, config.pitr
    return {
        "kind": "nightly_files",
        "host": b.host,
        "argv": plans.container_exec_prefix(config),
        "mount": p.mount,
        "barman_home": b.home,
        "timestamp_file": SCRATCH_FILE,
        "container": b.container,
        "volume": p.volume,
    }


def plan(config: Config, target: datetime, backup_id: str) -> dict:
    """The steps of a PITR to ``target`` from base backup ``backup_id``."""
    b, n, p = config.barman, config.nightly, config.pitr
    files_step = scratch_files(config)
    when = target_text(target)
    recover = [*b.command, "recover", "--target-time", when, "--target-action", "promote"]
    if n.jobs and n.jobs > 1:
        recover += ["--jobs", str(n.jobs)]
    dest = f"{p.mount}/{RECOVERED_INTO}"
    return {
        "action": ACTION,
        "host": n.host,
        "profile": None,
        "title": f"point-in-time recovery to {when} into {p.volume}",
        "config": str(config.path),
        "target_time": when,
        "backup_id": backup_id,
        "port": p.port,
        "volume": p.volume,
        "keep_minutes": p.keep_minutes,
        "steps": [
            {
                "name": f"archive the WAL up to now (barman switch-wal --force --archive {b.server})",
                "kind": "command",
                "host": b.host,
                "argv": [*b.command, "switch-wal", "--force", "--archive", b.server],
            },
            {"name": f"prepare the scratch volume {p.volume}", **files_step, "op": "prepare", "scratch": True},
            {
                "name": f"barman recover --target-time {when} from backup {backup_id}",
                "kind": "command",
                "host": b.host,
                "argv": [*recover, b.server, backup_id, dest],
                "scratch": True,
            },
            {"name": "move the recovered files up", **files_step, "op": "move-up", "scratch": True},
            {
                "name": f"replay to the target in a temporary container on port {p.port}, verify",
                "kind": "pitr_replay",
                "host": n.host,
                "container": CONTAINER,
                "volume": p.volume,
                "image": n.replay.image,
                "command": list(n.replay.command),
                "user": n.replay.user,
                "data_dir": n.replay.data_dir,
                "ready_command": list(n.replay.ready_command),
                "timeout": n.replay.timeout_seconds,
                "mounts": [*n.replay.mounts, f"{p.volume}:{dest}:rw"],
                "env_names": plans.env_names(n.replay.env),
                "port": p.port,
                "scratch": True,
            },
            {
                "name": f"keep the scratch copy up {p.keep_minutes} min (or until runs cancel), then remove it",
                "kind": "pitr_keep",
                "host": n.host,
                "container": CONTAINER,
                "keep_minutes": p.keep_minutes,
                "scratch": True,
            },
        ],
    }


def psql_line(config: Config, port: int) -> str:
    """What the operator types to query the scratch copy (no password: psql asks, or the passfile)."""
    s = config.science
    return shlex.join(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", s.db_user, s.db_name])


# -- the steps -------------------------------------------------------------------------------------


class PitrRunner(StepRunner):
    """StepRunner with the PITR's step kinds; a failed or cancelled scratch step removes the copy."""

    def __init__(self, run: Run, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.runrec = run

    def run(self, step: dict) -> None:
        try:
            super().run(step)
        except BaseException:
            if step.get("scratch") and step["kind"] != "pitr_keep":
                self.remove_scratch(step["host"])
            raise

    def _pitr_replay(self, step: dict) -> None:
        port = int(step["port"])
        container = self.start_replay(step, env={"PGPORT": str(port)})
        try:
            self._until_ready(container, step["ready_command"], step["timeout"])
        except StepFailed as e:
            if NOT_REACHED in clean(container.logs(tail=200), limit=200 * 1000):
                raise StepFailed(
                    f"PostgreSQL ended the recovery before the target {self.runrec.plan()['target_time']}: "
                    "no transaction committed after it has been archived yet (try an earlier time, or "
                    "again in a minute)"
                ) from None
            raise e
        rc, out = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)])
        if rc != 0:
            raise StepFailed(
                f"the scratch copy does not answer on 127.0.0.1:{port} (pitr.port): nightly.replay.command "
                f"must leave the port to $PGPORT; pg_isready: {one_line(clean(out or b''), limit=200)}"
            )
        results = verify.run_verify(self.config, container, self.write)
        try:
            newest = verify.newest_data(self.config, container)
            problem = None
        except verify.NoTimestamp as e:
            newest, problem = None, str(e)
        plan_ = self.runrec.plan()
        target = parse_iso_or_none(plan_["target_time"])
        achieved = newest.isoformat() if newest else None
        if newest and target:
            self.write(
                f"achieved point: {achieved}, {duration((target - newest).total_seconds())} before the target "
                f"{plan_['target_time']}\n"
            )
        elif problem:
            self.write(f"achieved point unknown: {problem}\n")
        failures = verify.failed(results) + (["science.rpo_sql"] if problem or newest is None else [])
        facts = {
            "outcome": "failed" if failures else "passed",
            "achieved_time": achieved,
            "verify": results,
            "verified_at": now_iso(),
            "failure": f"verification failed: {', '.join(failures)}" if failures else None,
        }
        report = write_reports(self.config.state_dir, self.runrec, facts)
        self.write(
            f"==> point-in-time copy {report['outcome'].upper()} in {duration(report['seconds'])}: "
            f"data up to {achieved or 'unknown'} (target {plan_['target_time']}); "
            f"report: {report_dir(self.config.state_dir, self.runrec.id) / 'report.md'}\n"
            f"==> query it: {psql_line(self.config, port)}\n"
        )

    def _pitr_keep(self, step: dict) -> None:
        import docker.errors

        minutes = float(step["keep_minutes"])
        deadline = time.monotonic() + minutes * 60
        until = utc_now() + timedelta(minutes=minutes)
        write_reports(self.config.state_dir, self.runrec, {"kept_until": until.isoformat(timespec="seconds")})
        self.write(
            f"scratch copy kept up until {until:%H:%M} UTC; `montagu-console runs cancel {self.runrec.id}` "
            "removes it now\n"
        )
        why = f"kept for pitr.keep_minutes ({minutes:g} min)"
        try:
            while time.monotonic() < deadline:
                if self.cancelled():
                    why = "runs cancel: the operator is done with it"
                    break
                try:
                    container = self._docker(step["host"]).containers.get(step["container"])
                    running = container.status == "running"
                except docker.errors.NotFound:
                    running = False
                if not running:
                    why = f"container {step['container']} stopped or was removed by someone else"
                    break
                left = deadline - time.monotonic()
                self.on_progress(
                    Progress(100 * (1 - left / (minutes * 60)), int(left), f"kept up until {until:%H:%M} UTC")
                )
                self._sleep(5)
        finally:
            self.write(f"removing the scratch copy: {why}\n")
            self.remove_scratch(step["host"])

    def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once on a cancel."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.cancelled():
            time.sleep(0.2)

    def remove_scratch(self, host: str) -> None:
        """Stop and remove the scratch container and empty the scratch volume; never raises (each
        failure is a warning line), audited before and after."""
        import docker.errors

        volume = self.config.pitr.volume
        fields = {"action": ACTION, "host": host, "run_id": self.runrec.id, "container": CONTAINER, "volume": volume}
        self._audit("scratch copy removal started", **fields)
        problems = []
        try:
            container = self._docker(host).containers.get(CONTAINER)
            container.stop(timeout=60)
            container.remove(force=True)
            self.write(f"{CONTAINER} stopped and removed\n")
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, StepFailed) as e:
            problems.append(f"{CONTAINER}: {one_line(str(e), limit=300)}")
        try:
            self._nightly_files({**scratch_files(self.config), "op": "clear"})
            self.write(f"scratch volume {volume} emptied\n")
        except Cancelled:  # the command ran to its end: a cancel only cuts the waiting short
            self.write(f"scratch volume {volume} emptied\n")
        except Exception as e:
            problems.append(f"{volume}: {one_line(str(e), limit=300)}")
        for problem in problems:
            self.write(f"warning: the scratch copy was not removed completely: {problem}\n")
        self._audit("scratch copy removal finished", outcome="failed" if problems else "done", **fields)
        write_reports(self.config.state_dir, self.runrec, {"removed_at": now_iso() if not problems else None})

    def _audit(self, event: str, **fields: Any) -> None:
        try:
            audit.append(self.config.state_dir, event, operator=self.runrec.record().get("operator"), **fields)
        except Exception as e:  # the removal goes on; the log says the audit record is missing
            self.write(f"warning: audit record {event!r} not written: {one_line(str(e), limit=200)}\n")


# -- reports ---------------------------------------------------------------------------------------


def report_dir(state_dir: Path, pitr_id: str) -> Path:
    return Path(state_dir) / REPORTS / pitr_id


def read_report(state_dir: Path, pitr_id: str) -> dict | None:
    """A PITR's report.json, or None when it has none (yet) or it is not a report."""
    try:
        report = files.read_json(report_dir(state_dir, pitr_id) / "report.json")
    except (OSError, files.StateFileError):
        return None
    return report if isinstance(report, dict) else None


def build_report(run: Run, facts: dict, base: dict | None = None) -> dict:
    """report.json (spec section 9 keys, and more) from the run, its plan and ``facts``."""
    rec, plan_ = run.record(), run.plan()
    report = dict(base or {})
    report |= {k: v for k, v in facts.items() if v is not None or k in ("removed_at",)}
    started = report.get("started_at") or rec.get("started_at") or rec.get("created_at")
    finished = report.get("finished_at") or report.get("verified_at") or rec.get("finished_at") or now_iso()
    target, achieved = plan_.get("target_time"), report.get("achieved_time")
    steps = [
        {
            "name": s.get("name"),
            "state": "skipped"
            if (s.get("state") or "pending") == "pending" and rec.get("finished_at")
            else s.get("state"),
            "started_at": s.get("started_at"),
            "finished_at": s.get("finished_at"),
            "output_tail": tail("\n".join(s.get("output_tail") or [])),
        }
        for s in rec.get("steps", [])
    ]
    report |= {
        "pitr_id": run.id,
        "outcome": report.get("outcome") or "failed",
        "target_time": target,
        "achieved_time": achieved,
        "behind_target_seconds": seconds_between(achieved, target),
        "started_at": started,
        "finished_at": finished,
        "seconds": seconds_between(started, finished),
        "backup_id": plan_.get("backup_id"),
        "verify": report.get("verify") or [],
        "port": plan_.get("port"),
        "volume": plan_.get("volume"),
        "measured": (
            "seconds: wall time from the start of the run (before the WAL switch) to the moment the "
            "scratch copy answered and every science.verify query had run; achieved_time: "
            "science.rpo_sql's value in the recovered data (its newest committed timestamp)"
        ),
        "operator": rec.get("operator"),
        "steps": steps,
        "failure": report.get("failure") or (rec.get("error") if report.get("outcome") != "passed" else None),
    }
    return redact_data(clean_data(report))


def write_reports(state_dir: Path, run: Run, facts: dict) -> dict:
    """Merge ``facts`` into the PITR's report.json (created on first call) and rewrite report.md,
    each atomically; return the report."""
    where = files.ensure_dir(files.ensure_dir(state_dir / REPORTS) / run.id)
    report = build_report(run, facts, read_report(state_dir, run.id))
    files.write_json(where / "report.json", report)
    files.write_text(where / "report.md", render_markdown(report))
    return report


def write_refused(state_dir: Path, pitr_id: str, target: str | None, reason: str, operator: dict) -> Path:
    """report.json and report.md of a PITR refused before it started; return the report.md path."""
    where = files.ensure_dir(files.ensure_dir(Path(state_dir) / REPORTS) / pitr_id)
    now = now_iso()
    report = redact_data(
        clean_data(
            {
                "pitr_id": pitr_id,
                "outcome": "refused",
                "target_time": one_line(target or "", limit=64) or None,
                "achieved_time": None,
                "started_at": now,
                "finished_at": now,
                "seconds": 0.0,
                "backup_id": None,
                "verify": [],
                "port": None,
                "operator": operator,
                "steps": [],
                "failure": reason,
            }
        )
    )
    files.write_json(where / "report.json", report)
    files.write_text(where / "report.md", render_markdown(report))
    return where / "report.md"


def finish(state_dir: Path, run: Run, state: str) -> dict:
    """The report once the run has ended (``state``: its final state): a run that never had a
    verified copy is ``failed``; one that had keeps its outcome and gains the steps' ends."""
    facts: dict[str, Any] = {}
    existing = read_report(state_dir, run.id)
    if state == "refused":
        facts = {"outcome": "refused", "failure": run.record().get("error")}
    elif not existing or not existing.get("verified_at"):
        why = run.record().get("error") or f"the run ended {state}"
        facts = {"outcome": "failed", "failure": why, "finished_at": run.record().get("finished_at")}
    return write_reports(state_dir, run, facts)


def exit_code(report: dict | None) -> int:
    """As for drills: 0 passed, 1 a verification failed, 2 a step failed or it was refused."""
    if not report:
        return 2
    if report.get("outcome") == "passed":
        return 0
    return 1 if report.get("outcome") == "failed" and report.get("verified_at") else 2


def render_markdown(r: dict) -> str:
    """A report readable on its own; every value from data is escaped."""
    t = md_text
    op = r.get("operator") or {}
    behind = r.get("behind_target_seconds")
    lines = [
        f"# Point-in-time recovery {t(r.get('pitr_id'))}: {t(str(r.get('outcome')).upper())}",
        "",
        f"- Target time: {t(r.get('target_time'))}",
        f"- Achieved point (newest committed data recovered): {t(r.get('achieved_time') or 'not measured')}"
        + (f", {t(duration(behind))} before the target" if isinstance(behind, (int, float)) else ""),
        f"- Base backup: {t(r.get('backup_id') or 'none')}",
        f"- Took: {t(duration(r.get('seconds')))} (started {t(r.get('started_at'))}, ready {t(r.get('finished_at'))})",
        f"- Run by: {t(op.get('user', 'unknown'))}"
        + (f" (SSH from {t(op['ssh_client'])})" if op.get("ssh_client") else ""),
    ]
    if r.get("port"):
        lines.append(f"- Scratch copy: volume {t(r.get('volume'))}, port {t(r.get('port'))} on 127.0.0.1")
    if r.get("kept_until"):
        lines.append(f"- Kept up until: {t(r.get('kept_until'))}")
    if "removed_at" in r:
        lines.append(f"- Removed at: {t(r.get('removed_at') or 'NOT removed completely: see the run log')}")
    lines += md_verification(r)
    if r.get("steps"):
        lines += ["", "## Steps", "", "| # | step | state | started | finished |", "| --- | --- | --- | --- | --- |"]
        for i, s in enumerate(r["steps"], 1):
            lines.append(
                f"| {i} | {md_cell(s.get('name'))} | {md_cell(s.get('state'))} | {md_cell(s.get('started_at'))} "
                f"| {md_cell(s.get('finished_at'))} |"
            )
        lines += ["", "## Output of each step (last lines)", ""]
        for s in r["steps"]:
            if s.get("output_tail"):
                lines += [f"### {md_text(s.get('name'))}", "", *md_block(list(s["output_tail"])), ""]
    return "\n".join(lines) + "\n"
