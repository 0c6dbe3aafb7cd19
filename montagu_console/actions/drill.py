"""Guided restore drills: the plan, the drill-only steps, RTO/RPO and the reports.

A drill is a run whose directory lives under ``state_dir/drills/<id>/``. Its steps are the
restore's steps framed by a preflight (and the primary's clock, for RPO) and by the
verification queries; the report is written by the last step, and again if a step fails, so
``report.md`` and ``report.json`` always exist once the drill has ended.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path
from typing import Any

from ..clock import duration, now_iso, seconds_between
from ..config import Config
from ..redact import redact, redact_data
from ..text import clean, clean_data, one_line
from . import files, plans, verify
from .progress import tail
from .runs import Run, RunStore
from .steps import StepFailed, StepRunner
from .verify import MAX_VALUE_CHARS


def drill_plan(config: Config) -> dict:
    """The drill's steps under the configured restore profile."""
    restore = plans.plan(config, "restore")["steps"]
    s = config.science
    return {
        "action": "drill",
        "host": s.host,
        "profile": s.profile,
        "config": str(config.path),
        "title": f"restore drill of {s.host} (profile {s.profile})",
        "steps": [
            {
                "name": "preflight: hosts, space, what is overwritten, age of the source",
                "kind": "drill_preflight",
                "host": s.host,
                "destructive": False,
            },
            restore[0] | {"destructive": True},
            restore[1] | {"name": f"restore: {' '.join(s.restore_command)}", "destructive": True},
            restore[2] | {"destructive": False},
            restore[3] | {"destructive": False},
            {
                "name": "verify the restored data",
                "kind": "drill_verify",
                "host": s.host,
                "container": s.container,
                "destructive": False,
            },
            {"name": "measure RPO and write the report", "kind": "drill_report", "host": s.host, "destructive": False},
        ],
    }


class DrillRunner(StepRunner):
    """StepRunner with the drill's own step kinds; facts go into run.json under ``drill``."""

    def __init__(self, run: Run, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runrec = run

    def facts(self) -> dict:
        return self.runrec.record().get("drill", {})

    def remember(self, **facts) -> None:
        self.runrec.update(drill=self.facts() | redact_data(facts))

    # -- step kinds ----------------------------------------------------------------------------

    def _drill_preflight(self, step: dict) -> None:
        facts = asyncio.run(_preflight(self.config))
        for line in facts["lines"]:
            self.write(f"preflight: {line}\n")
        self.remember(
            primary_clock_at_start=facts["primary_clock"],
            clock_source=facts["clock_source"],
            source=facts["source"],
            versions=facts["versions"],
            overwrites=facts["overwrites"],
        )
        if facts["problems"]:
            raise StepFailed("preflight: " + "; ".join(facts["problems"]))

    def _drill_verify(self, step: dict) -> None:
        results = verify.run_verify(self.config, self._container(step), self.write)
        bad = verify.failed(results)
        self.remember(verify=results, verified_at=now_iso() if not bad else None)
        if bad:
            self.remember(verify_failed=bad)
            raise StepFailed("verification failed: " + ", ".join(bad))

    def _drill_report(self, step: dict) -> None:
        newest = None
        if self.config.science.rpo_sql:
            container = self._container(step | {"container": self.config.science.container})
            try:
                newest = verify.newest_data(self.config, container)
            except verify.NoTimestamp as e:
                raise StepFailed(str(e)) from None
        if newest is not None:
            self.write(f"newest committed data in the restored database: {newest.isoformat()}\n")
        self.remember(newest_committed=newest.isoformat() if newest else None)


async def _preflight(config: Config) -> dict:
    """Hosts reachable, free space, what will be overwritten, the source's age, the primary clock."""
    from ..collect import Collector
    from ..probes.space import df_free_bytes

    lines, problems = [], []
    collector = Collector(config)
    try:
        snap = await collector.snapshot()
        pool = collector.pool
        for name, host in config.hosts.items():
            try:
                await pool.transport(name).run(["true"], timeout=config.connect_timeout + 5)
                if host.docker:
                    await pool.docker(name).ping()
                lines.append(f"host {name} reachable")
            except Exception as e:  # every unreachable host is listed, not only the first
                problems.append(redact(str(e)))
        b = snap.panels["barman"].facts
        w = snap.panels["wal"].facts
        st = snap.panels["starport"].facts
        r = snap.panels["restore"].facts
        source = {
            "nightly_restored_at": st.get("nightly_restored_at"),
            "last_backup_id": b.get("last_backup_id"),
            "last_backup_end": b.get("last_backup_end"),
            "last_archived_wal": w.get("last_archived_wal"),
            "last_archived_at": w.get("last_archived_at"),
        }
        lines.append(
            f"source: nightly copy restored at {source['nightly_restored_at']}, newest base backup "
            f"{source['last_backup_id']}, last archived WAL {source['last_archived_wal']}"
        )
        s = config.science
        overwrites = (
            f"the database of {s.container} on {s.host} (volume {s.volume}), now on data from "
            f"{r.get('data_restored_from')}"
        )
        lines.append(f"overwrites: {overwrites}")
        docker = pool.docker(s.host)
        df = await docker.exec(s.container, ["df", "-Pk", s.data_dir], timeout=config.command_timeout)
        free = df_free_bytes(df.stdout)
        if free is None:
            problems.append(f"cannot read free space on {s.host} at {s.data_dir}")
        else:
            lines.append(f"free space on {s.host} at {s.data_dir}: {free // 1024**2} MiB")
        version = await docker.exec(
            s.container,
            ["psql", "-U", s.db_user, "-d", s.db_name, "-XAtqc", "show server_version"],
            timeout=config.command_timeout,
        )
        versions = {"postgres": version.stdout.strip() or None, "barman": b.get("barman_version")}
        clock, clock_source = await _primary_clock(config, pool)
        lines.append(f"primary clock at the start: {clock} ({clock_source})")
    finally:
        await collector.close()
    return {
        "lines": lines,
        "problems": problems,
        "source": source,
        "versions": versions,
        "overwrites": overwrites,
        "primary_clock": clock,
        "clock_source": clock_source,
    }


async def _primary_clock(config: Config, pool) -> tuple[str, str]:
    command = config.science.primary_clock_command
    if not command:
        return now_iso(), "the console's clock (science.primary_clock_command is not set)"
    result = await pool.transport(config.barman.host).run(list(command), timeout=config.command_timeout)
    text = result.stdout.strip()
    if result.returncode != 0 or not text:
        raise StepFailed(f"`{shlex.join(command)}` failed: {(result.stderr or text).strip()[:200]}")
    return verify.parse_pg_time(text).isoformat(), f"the primary's clock (`{shlex.join(command)}`)"


# -- reports ---------------------------------------------------------------------------------------


def build_report(run: Run, outcome: str) -> dict:
    """report.json for a drill run (spec section 6 keys); no secret and no control character in it."""
    rec, plan = run.record(), run.plan()
    facts = rec.get("drill") or {}
    started = rec.get("drill_started_at") or rec.get("started_at") or rec.get("created_at")
    verified = facts.get("verified_at")
    rto = seconds_between(started, verified) if verified and outcome == "passed" else None
    newest, clock = facts.get("newest_committed"), facts.get("primary_clock_at_start")
    rpo = seconds_between(newest, clock) if newest and clock else None
    steps = []
    never_ran = "pending" if outcome == "interrupted" else "skipped"
    for s in rec.get("steps", []):
        state = s.get("state") or "pending"
        steps.append(
            {
                "name": s.get("name"),
                "state": never_ran if state == "pending" else state,
                "started_at": s.get("started_at"),
                "finished_at": s.get("finished_at"),
                "output_tail": tail("\n".join(s.get("output_tail") or [])),
            }
        )
    return redact_data(
        clean_data(
            {
                "drill_id": run.id,
                "outcome": outcome,
                "started_at": started,
                "finished_at": rec.get("finished_at") or now_iso(),
                "profile": plan.get("profile"),
                "rto_seconds": rto,
                "rpo_seconds": rpo,
                "measured": {
                    "rto": "Wall time from the start of the drill (before the preflight) to the moment every "
                    "verification query from science.verify had passed on the restored database"
                    + ("" if rto is not None else "; not measured because the drill did not pass")
                    + ".",
                    "rpo": "The primary's clock at the start of the drill "
                    f"({facts.get('clock_source', 'unknown source')}) "
                    f"minus the newest committed timestamp in the restored database (science.rpo_sql)"
                    + ("" if rpo is not None else "; not measured because no such timestamp was read")
                    + ".",
                },
                "source": {
                    k: (facts.get("source") or {}).get(k)
                    for k in ("nightly_restored_at", "last_backup_id", "last_archived_wal")
                },
                "versions": facts.get("versions") or {"postgres": None, "barman": None},
                "operator": rec.get("operator"),
                "overwrites": facts.get("overwrites"),
                "gaps": rec.get("gaps", []),
                "steps": steps,
                "verify": facts.get("verify", []),
                "failure": rec.get("error"),
            }
        )
    )


def write_reports(run: Run, outcome: str) -> dict:
    """Write report.json and report.md into the drill's directory, each replaced atomically; return the report."""
    report = build_report(run, outcome)
    files.write_json(run.path / "report.json", report)
    files.write_text(run.path / "report.md", render_markdown(report))
    return report


# Markdown's ASCII punctuation that can start a construct (emphasis, a link, code, HTML, a
# table cell boundary...); each is backslash-escaped in text that comes from data
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#!|~&])")


def md_text(value: Any) -> str:
    """``value`` as inline Markdown text: one line, every construct escaped (``|`` cannot end a cell)."""
    if value is None:
        return ""
    text = _MD_SPECIAL.sub(r"\\\1", one_line(str(value), limit=MAX_VALUE_CHARS))
    if text[:1] in ("-", "+"):  # never a list item
        return "\\" + text
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)


def md_cell(value: Any) -> str:
    """``value`` as a table cell: escaped like :func:`md_text`, its line breaks shown as ``<br>``."""
    if value is None:
        return ""
    lines = clean(str(value), limit=MAX_VALUE_CHARS).split("\n")
    return "<br>".join(md_text(line) for line in lines if line.strip()) or ""


def md_code(value: Any) -> str:
    """``value`` as a code span in a table cell: a fence longer than any run of backticks in it."""
    text = one_line(str(value or ""), limit=MAX_VALUE_CHARS).replace("|", "\\|")
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def md_block(lines: list[str]) -> list[str]:
    """Lines as a fenced code block whose fence no line can close."""
    body = [clean(line, limit=MAX_VALUE_CHARS).replace("\n", " ") for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`{3,}|~{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *body, fence]


def md_verification(r: dict) -> list[str]:
    """A report's verification table (every query, its value and verdict) and its failure."""
    lines = [
        "",
        "## Verification",
        "",
        "| query | SQL | expected | value | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in r.get("verify") or []:
        lines.append(
            f"| {md_cell(v.get('name'))} | {md_code(v.get('sql'))} | {md_cell(v.get('expect'))} "
            f"| {md_cell(v.get('value'))} | {'PASS' if v.get('passed') else 'FAIL'} |"
        )
    if not r.get("verify"):
        lines.append("| (none run) | | | | |")
    if r.get("failure"):
        lines += ["", "## Failure", "", md_text(r["failure"])]
    return lines


def render_markdown(r: dict) -> str:
    """A report an auditor can read without the console; every value from data is escaped."""

    def fmt(seconds):
        if seconds is None:
            return "not measured"
        return f"{seconds:.0f} s ({duration(seconds)})" if seconds >= 60 else f"{seconds:.1f} s"

    t = md_text
    op = r.get("operator") or {}
    versions = r.get("versions") or {}
    source = r.get("source") or {}
    measured = r.get("measured") or {}
    lines = [
        f"# Restore drill {t(r.get('drill_id'))}: {t(str(r.get('outcome')).upper())}",
        "",
        f"- Started: {t(r.get('started_at'))}",
        f"- Finished: {t(r.get('finished_at'))}",
        f"- Run by: {t(op.get('user', 'unknown'))}"
        + (f" (SSH from {t(op['ssh_client'])})" if op.get("ssh_client") else ""),
        f"- Restore profile: {t(r.get('profile'))}",
        f"- What was overwritten: {t(r.get('overwrites') or 'unknown')}",
        f"- PostgreSQL {t(versions.get('postgres') or 'unknown')}, barman {t(versions.get('barman') or 'unknown')}",
        "",
        "## Result",
        "",
        "| measure | value | how it was measured |",
        "| --- | --- | --- |",
        f"| RTO | {fmt(r.get('rto_seconds'))} | {md_cell(measured.get('rto'))} |",
        f"| RPO | {fmt(r.get('rpo_seconds'))} | {md_cell(measured.get('rpo'))} |",
        "",
        "## Source of the restored data",
        "",
        f"- Nightly copy restored by barman at: {t(source.get('nightly_restored_at'))}",
        f"- Newest base backup: {t(source.get('last_backup_id'))}",
        f"- Last archived WAL: {t(source.get('last_archived_wal'))}",
        "",
        "## Steps",
        "",
        "| # | step | state | started | finished |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, s in enumerate(r.get("steps") or [], 1):
        lines.append(
            f"| {i} | {md_cell(s.get('name'))} | {md_cell(s.get('state'))} | {md_cell(s.get('started_at'))} "
            f"| {md_cell(s.get('finished_at'))} |"
        )
    if r.get("gaps"):
        lines += ["", "## Interruptions", ""]
        lines += [
            f"- the drill's process stopped at {t(g.get('stopped_at'))} and was resumed at "
            f"{t(g.get('resumed_at'))} ({t(duration(g.get('seconds')))} lost); finished steps were not repeated"
            for g in r["gaps"]
        ]
    lines += md_verification(r)
    lines += ["", "## Output of each step (last lines)", ""]
    for s in r.get("steps") or []:
        if s.get("output_tail"):
            lines += [f"### {md_text(s.get('name'))}", "", *md_block(list(s["output_tail"])), ""]
    return "\n".join(lines) + "\n"


def outcome_of(run: Run) -> str:
    """passed | failed | interrupted, from the run's state and its verification."""
    state = run.state
    if state == "succeeded":
        return "passed"
    if state in ("running", "starting"):
        return "running"
    if state == "interrupted":
        return "interrupted"
    if state == "refused":
        return "refused"
    return "failed"


def list_drills(state_dir: Path) -> list[dict]:
    """Every drill's report (or its state when it has none yet), oldest first."""
    out = []
    for run in RunStore(state_dir, "drills").all():
        report = run.path / "report.json"
        if report.exists():
            try:
                out.append(json.loads(report.read_text()))
                continue
            except ValueError:
                pass
        out.append(
            {
                "drill_id": run.id,
                "outcome": outcome_of(run),
                "started_at": run.record().get("started_at"),
                "rto_seconds": None,
                "rpo_seconds": None,
            }
        )
    return out


# Starting and resuming a drill: ActionService.start_drill and resume_drill (actions/service.py).
