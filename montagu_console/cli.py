"""The ``montagu-console`` command line (spec section 2).

Textual is imported only by the commands that draw a screen, so ``check`` stays fast and
works where no terminal exists (cron, Nagios).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, ConsoleError
from .snapshot import PANELS

PROG = "montagu-console"


def _common(suppress: bool) -> argparse.ArgumentParser:
    """--config, --read-only and --theme, accepted before or after the command."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        help="config file (default: $MONTAGU_CONSOLE_CONFIG, "
        "~/.config/montagu-console/config.yml, /etc/montagu-console/config.yml)",
        **default,
    )
    p.add_argument("--read-only", action="store_true", help="refuse every action", **(default or {"default": None}))
    p.add_argument("--theme", help="colour theme (montagu-dark, montagu-light, montagu-high-contrast)", **default)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Operator console for the Montagu database backup chain.", parents=[_common(False)]
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_subparser_class())

    c = sub.add_parser("check", help="one headless refresh; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the check document as JSON")
    fmt.add_argument("--nagios", action="store_true", help="print one Nagios plugin line")
    fmt.add_argument("--prometheus", metavar="FILE", help="write a node-exporter textfile atomically")
    c.add_argument("--panel", choices=PANELS, action="append", help="only this panel (repeatable)")
    c.add_argument(
        "--instance",
        metavar="NAME",
        action="append",
        help="the barman and WAL panels of this barman instance only (repeatable; one Nagios service each)",
    )

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    cfg_sub.add_parser("check", help="validate the config: exit 0, or print every error and exit 2")

    lab = sub.add_parser("lab", help="the embedded lab: a real miniature of the chain on this machine")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND", required=True)
    up = lab_sub.add_parser("up", help="build (or reuse) the lab and print the path of its config")
    up.add_argument("--dir", type=Path, help="lab directory (default $MONTAGU_LAB_DIR or /srv/montagu-lab)")
    for name, text in (("down", "stop everything the lab started"), ("status", "show the lab's components")):
        lp = lab_sub.add_parser(name, help=text)
        lp.add_argument("--dir", type=Path, help="lab directory")

    demo = sub.add_parser("demo", help="lab up (reusing a running lab), then the console on it")
    demo.add_argument("--dir", type=Path, help="lab directory")

    run = sub.add_parser("run", help="run an action headless")
    run.add_argument("action", choices=("base-backup", "nightly-recover", "restore", "prove-nightly", "drill", "pitr"))
    run.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run.add_argument("--detach", action="store_true", help="return once the run has started")
    run.add_argument("--resume", nargs="?", const="latest", metavar="ID", help="drill: continue an interrupted drill")
    run.add_argument(
        "--target-time",
        metavar="T",
        help='pitr: the point to recover to, e.g. "2026-12-01 14:02:00+00" (UTC if no zone)',
    )
    runs = sub.add_parser("runs", help="detached runs")
    runs.add_argument("runs_command", nargs="?", default="list", choices=("list", "attach", "cancel"))
    runs.add_argument("id", nargs="?")
    drills = sub.add_parser("drills", help="restore drill history")
    drills.add_argument("drills_command", nargs="?", default="list", choices=("list", "show"))
    drills.add_argument("id", nargs="?")
    hist = sub.add_parser(
        "history",
        help="the chain's history: panel readings, runs, drills, proofs and PITRs (state_dir/history.sqlite3)",
        description="Every check and the TUI write each panel's status, summary and numeric facts; runs, drills, "
        "proofs and point-in-time recoveries are brought in from state_dir by id. Oldest first.",
    )
    hist.add_argument(
        "--panel",
        action="append",
        choices=(*PANELS, "runs", "drills", "proofs", "pitr"),
        help="only this panel, or only runs, drills, proofs or pitr (repeatable)",
    )
    hist.add_argument("--instance", metavar="N", action="append", help="only this barman instance's rows (repeatable)")
    hist.add_argument("--since", metavar="AGE", help="only the last AGE: 30m, 12h, 7d, 2w (default: everything kept)")
    hist_fmt = hist.add_mutually_exclusive_group()
    hist_fmt.add_argument(
        "--json", action="store_true", help="a list of objects: at, panel, instance, id, status, summary, facts"
    )
    hist_fmt.add_argument("--csv", action="store_true", help="a header row, then one row each (facts as JSON)")
    return p


def _subparser_class():
    common = _common(True)

    class SubParser(argparse.ArgumentParser):
        def __init__(self, *a, **kw):
            kw.setdefault("parents", [common])
            super().__init__(*a, **kw)

    return SubParser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; every error is one line on stderr, never a traceback.

    ``check`` exits 3 (UNKNOWN) on anything that is not its own verdict, every other command 2.
    """
    _one_line_diagnostics()
    args = build_parser().parse_args(argv)
    failed = 3 if args.command == "check" else 2
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except ConfigError as e:
        for line in e.errors:
            _say(line)
        return failed
    except ConsoleError as e:
        _say(str(e))
        return failed if args.command == "check" else e.exit_code
    except KeyboardInterrupt:
        # the probes cut short are garbage-collected now: their errors are no news to the operator
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        _say("interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (`check | head -1`): nothing more to say, and no "Exception ignored"
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return failed
    except Exception as e:  # the last resort: one line, so cron mail and Nagios never get a traceback
        _say(f"internal error: {_one_line_error(e)}")
        return failed


def _say(line: str) -> None:
    """One line on stderr, cleaned and redacted (it may quote a host or a file)."""
    from .redact import redact
    from .text import one_line

    with contextlib.suppress(OSError):  # stderr itself gone: the exit status still tells
        print(f"{PROG}: {redact(one_line(line))}", file=sys.stderr)


def _one_line_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class _OneLineFormatter(logging.Formatter):
    """Log records as one line each: an attached exception is named, its traceback is not printed."""

    def format(self, record: logging.LogRecord) -> str:
        from .redact import redact
        from .text import one_line

        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {_one_line_error(record.exc_info[1])}"
        return f"{PROG}: {record.levelname.lower()}: {redact(one_line(message))}"


def _one_line_diagnostics() -> None:
    """Warnings from libraries, asyncio and unraisable exceptions reach stderr as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)

    def unraisable(hook_args: Any) -> None:
        if hook_args.exc_value is not None and not isinstance(hook_args.exc_value, BrokenPipeError):
            _say(f"warning: {_one_line_error(hook_args.exc_value)}")

    sys.unraisablehook = unraisable


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        return _check(args)
    if args.command == "config":
        return _config_check(args)
    if args.command == "lab":
        return _lab(args)
    if args.command == "demo":
        from .lab import DEFAULT_LAB_DIR, lab_up

        config_path = lab_up(args.dir or DEFAULT_LAB_DIR)
        args.config = str(config_path)
        return _tui(args)
    if args.command == "run":
        return _run(args)
    if args.command == "runs":
        return _runs(args)
    if args.command == "drills":
        return _drills(args)
    if args.command == "history":
        return _history(args)
    return _tui(args)


def _load(args: argparse.Namespace):
    from .config import find_config, load_config

    return load_config(find_config(args.config))


def _check(args: argparse.Namespace) -> int:
    config = _load(args)
    from . import check
    from .collect import Collector
    from .history import record_check

    panels = tuple(p for p in PANELS if not args.panel or p in args.panel)

    async def once():
        collector = Collector(config, instances=args.instance)
        try:
            return await collector.snapshot(panels)
        finally:
            await collector.close()

    snap = asyncio.run(once())
    problem = record_check(config, snap)
    if problem:
        _say(problem)
    if args.json:
        print(check.dumps(snap))
    elif args.nagios:
        print(check.to_nagios(snap))
    elif args.prometheus:
        try:
            check.write_prometheus(snap, Path(args.prometheus))
        except OSError as e:
            raise ConsoleError(f"--prometheus {args.prometheus}: cannot write: {e.strerror}") from None
    else:
        print(check.to_text(snap))
    return snap.status.exit_code


def _run(args: argparse.Namespace) -> int:
    from .actions.runs import RunState
    from .actions.service import ActionService, follow

    config = _load(args)
    service = ActionService(config, read_only=args.read_only)
    if (args.action == "pitr") != (args.target_time is not None):
        raise ConsoleError(
            "run pitr needs --target-time T" if args.action == "pitr" else "--target-time is only for run pitr"
        )
    if args.action == "pitr":
        return _run_pitr(args, service)
    if args.action == "drill":
        return _run_drill(args, service)
    info = service.info(args.action)
    print(f"{info.title} on {info.host}: {info.warning}")
    for fact in asyncio.run(service.preflight(args.action)):
        print(f"  preflight: {fact}")
    confirmation = "--yes" if args.yes else _ask(info)
    run = service.start(args.action, confirmation=confirmation)
    if args.detach:
        return _detached(run, "run")
    print(f"run {run.id} started (log: {run.log_path})")
    state = follow(run)
    print(f"run {run.id}: {state}" + (f": {run.record().get('error')}" if state != RunState.SUCCEEDED else ""))
    return 0 if state == RunState.SUCCEEDED else 1


def _detached(run, noun: str) -> int:
    """--detach: the supervisor has started (or already ended); 2 with its reason when it failed at once."""
    from .actions.runs import RunState

    rec = run.record()
    state = rec.get("state")
    if state in (RunState.RUNNING, RunState.SUCCEEDED):
        print(f"{noun} {run.id} started (log: {run.log_path})")
        print(f"follow it with: {PROG} runs attach {run.id}")
        return 0
    raise ConsoleError(f"{noun} {run.id} {state}: {rec.get('error') or 'no reason recorded'}")


def _run_drill(args: argparse.Namespace, service) -> int:
    from .actions import files
    from .actions.service import follow

    config = service.config
    if args.resume:
        run = service.resume_drill(args.resume)
    else:
        host = config.science.host
        print(f"restore drill of {host}: it stops {config.science.container} and overwrites science's database")
        if args.yes:
            confirmation = "--yes"
        elif not sys.stdin.isatty():
            raise ConsoleError("the drill needs confirmation: run it from a terminal, or add --yes")
        else:
            confirmation = input(f"Type {host!r} to confirm: ").strip()
        run = service.start_drill(confirmation=confirmation)
    if args.detach:
        return _detached(run, "drill")
    print(f"drill {run.id} started (log: {run.log_path})")
    follow(run)
    try:
        report = files.read_json(run.path / "report.json")
    except files.StateFileError:
        report = {}
    outcome = str(report.get("outcome") or run.state) if isinstance(report, dict) else str(run.state)
    rto = report.get("rto_seconds") if isinstance(report, dict) else None
    rpo = report.get("rpo_seconds") if isinstance(report, dict) else None
    print(f"drill {run.id}: {outcome.upper()}  RTO {rto} s  RPO {rpo} s  report: {run.path / 'report.md'}")
    if outcome == "passed":
        return 0
    failed = run.record().get("failed_step") or ""
    return 1 if failed.startswith("verify") else 2


def _run_pitr(args: argparse.Namespace, service) -> int:
    from .actions import pitr
    from .actions.service import follow

    info = service.info("pitr")
    print(f"{info.title} on {info.host}: {info.warning}")
    request = asyncio.run(service.preflight_pitr(args.target_time))
    for fact in request.facts:
        print(f"  preflight: {fact}")
    run = service.start_pitr(request, confirmation="--yes" if args.yes else _ask(info))
    if args.detach:
        return _detached(run, "run")
    print(f"run {run.id} started (log: {run.log_path})")
    state_dir = service.config.state_dir
    follow(run, until=lambda: bool((pitr.read_report(state_dir, run.id) or {}).get("kept_until")))
    report = pitr.read_report(state_dir, run.id) or {}
    print(
        f"pitr {run.id}: {str(report.get('outcome') or run.state).upper()}  target {report.get('target_time')}  "
        f"achieved {report.get('achieved_time')}  in {report.get('seconds')} s  "
        f"report: {pitr.report_dir(state_dir, run.id) / 'report.md'}"
    )
    if report.get("kept_until") and run.state == "running":
        print(f"query it: {pitr.psql_line(service.config, report.get('port') or service.config.pitr.port)}")
        print(f"kept up until {report['kept_until']}; `{PROG} runs cancel {run.id}` removes it now")
    return pitr.exit_code(report)


def _drills(args: argparse.Namespace) -> int:
    from .actions import files
    from .actions.drill import list_drills
    from .actions.runs import RunStore
    from .text import clean

    config = _load(args)
    if args.drills_command == "list":
        drills = list_drills(config.state_dir)
        if not drills:
            print("no drill on record")
        for d in drills:
            rto = "-" if not isinstance(d.get("rto_seconds"), (int, float)) else f"{d['rto_seconds']:.0f}s"
            rpo = "-" if not isinstance(d.get("rpo_seconds"), (int, float)) else f"{d['rpo_seconds']:.0f}s"
            print(
                clean(
                    f"{d.get('drill_id')!s:<36} {d.get('started_at') or '':<26} {d.get('outcome')!s:<12} "
                    f"RTO {rto:>7}  RPO {rpo:>7}"
                )
            )
        return 0
    if not args.id:
        raise ConsoleError(f"drills show needs a drill id (see `{PROG} drills list`)")
    run = RunStore(config.state_dir, "drills").get(args.id)
    try:
        text = files.read_text(run.path / "report.md")
    except FileNotFoundError:
        raise ConsoleError(f"drill {run.id} has no report yet (state: {run.state})") from None
    print(clean(text), end="")
    return 0


def _history(args: argparse.Namespace) -> int:
    from .history import history_command

    config = _load(args)
    fmt = "json" if args.json else "csv" if args.csv else "table"
    text, problem = history_command(config, panels=args.panel, instances=args.instance, since=args.since, fmt=fmt)
    if problem:
        _say(problem)
    print(text)
    return 0


def _ask(info) -> str:
    if not sys.stdin.isatty():
        raise ConsoleError(f"{info.action} needs confirmation: run it from a terminal, or add --yes")
    if info.confirm == "typed":
        answer = input(f"Type {info.confirm_text!r} to confirm: ").strip()
        if answer != info.confirm_text:
            raise ConsoleError(f"{info.action} not started: the confirmation did not match {info.confirm_text!r}")
        return answer
    if input("Start it? [y/N] ").strip().lower() not in ("y", "yes"):
        raise ConsoleError(f"{info.action} not started")
    return "y"


def _runs(args: argparse.Namespace) -> int:
    from .actions.runs import RunState, RunStore
    from .actions.service import ActionService, follow
    from .text import one_line

    config = _load(args)
    if args.runs_command == "list":
        bad = 0
        for run in RunStore(config.state_dir).all():
            rec = run.record()
            if rec.get("state") == RunState.UNKNOWN:
                bad += 1
                print(f"{PROG}: {one_line(str(rec.get('error')))}", file=sys.stderr)
                continue
            step = rec.get("current_step")
            steps = rec.get("steps") or []
            name = steps[step]["name"] if isinstance(step, int) and 0 <= step < len(steps) else ""
            print(
                one_line(
                    f"{run.id:<40} {rec.get('action', ''):<16} {run.state:<11} {rec.get('started_at') or '':<26} {name}"
                )
            )
        return 2 if bad else 0
    if not args.id:
        raise ConsoleError(f"runs {args.runs_command} needs a run id (see `{PROG} runs list`)")
    service = ActionService(config, read_only=args.read_only)
    if args.runs_command == "attach":
        run = service.find(args.id)
        run.load()  # a corrupt run.json: one line, exit 2
        state = follow(run)
        print(f"run {run.id}: {state}")
        return 0 if state == RunState.SUCCEEDED else 1
    run = service.cancel(args.id)
    print(f"run {run.id}: cancel sent")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"{config.path}: OK ({len(config.hosts)} hosts: {', '.join(config.hosts)})")
    return 0


def _lab(args: argparse.Namespace) -> int:
    from .lab import DEFAULT_LAB_DIR, lab_down, lab_status, lab_up

    lab_dir = args.dir or DEFAULT_LAB_DIR
    if args.lab_command == "up":
        print(lab_up(lab_dir))
        return 0
    if args.lab_command == "down":
        lab_down(lab_dir)
        return 0
    components = lab_status(lab_dir)
    for c in components:
        print(f"{c['name']:<16} {'running' if c['running'] else 'stopped':<8} {c['detail']}")
    return 0 if all(c["running"] for c in components) else 1


def _tui(args: argparse.Namespace) -> int:
    from functools import partial

    from .collect import Collector
    from .tui import run_tui

    config = _load(args)
    return run_tui(config, partial(Collector, tiered=True), theme=args.theme, read_only=args.read_only)
