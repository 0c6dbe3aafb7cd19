"""The action keys' flow: preflight, confirmation, detached start, following, cancel and re-attach.

Everything that touches the disk or the hosts runs in a worker, which only posts messages; the
app hands those to :class:`Operator`, whose handlers own every screen change. The preflight is
an async worker on the app's loop (it talks to the hosts through the transports), so quitting
cancels it at once instead of waiting for a thread; starting a supervisor, listing runs and
cancelling are thread workers. The action layer decides: read-only,
a second run, a busy container or a mismatched confirmation come back as ``ActionRefused``
and are shown as one line in the output pane and a toast.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from ..actions.pitr import Request as PitrRequest
from ..actions.runs import Run, RunStore, effective_state
from ..actions.service import ActionRefused, ActionService
from ..clock import utc_now
from ..errors import ConsoleError
from ..redact import redact
from .messages import ActionChecked, ActionNote, RunAttached, RunUpdated
from .present_runs import ACTIVE, current_step, describe, drill_summary, outcome_line, severity_of
from .runs import Attachment, read_report
from .screens.confirm import ConfirmScreen
from .screens.drill import DrillScreen
from .screens.pitr import PitrScreen
from .screens.run import RunScreen
from .tailer import follow

if TYPE_CHECKING:
    from .app import MontaguApp

# the panels a finished (or started) run changes, polled at once
AFFECTED = {
    "base-backup": ("barman", "wal"),
    "nightly-recover": ("starport",),
    "restore": ("restore",),
    "drill": ("restore",),
}
BINDING_OF = {
    "base-backup": "base-backup",
    "nightly-recover": "nightly-recover",
    "restore": "science-restore",
    "pitr": "pitr",
}


def _error(e: BaseException) -> str:
    return redact(str(e) if isinstance(e, ConsoleError) else f"{type(e).__name__}: {e}")


class Operator:
    """The console's side of the action layer: one per app."""

    def __init__(self, app: MontaguApp) -> None:
        self.app = app
        self.config = app.config
        self.read_only = app.read_only
        self.service = ActionService(app.config, read_only=app.read_only)
        self.attached: dict[str, Attachment] = {}
        self._checking: set[str] = set()
        self._pitr: PitrRequest | None = None  # the PITR its preflight let through, until confirmed

    @property
    def running(self) -> list[Attachment]:
        """Attached runs whose supervisor has not finished, oldest first."""
        return [a for a in self.attached.values() if not a.ended]

    def _thread(self, work: Callable[[], None], name: str) -> None:
        self.app.run_thread(work, name)

    def _post(self, message) -> None:
        self.app.post_message(message)

    # -- start-up: re-attach -------------------------------------------------------------------

    def reattach(self) -> None:
        """Follow every run and drill still running (started by an earlier console or the CLI)."""
        self._thread(self._find_runs, "find runs")

    def _find_runs(self) -> None:
        for kind in ("runs", "drills"):
            for run in RunStore(self.config.state_dir, kind).active():
                try:
                    self._post(RunAttached(run, kind, "re-attached", run.plan(), run.record()))
                except (OSError, ValueError) as e:
                    self._post(ActionNote(f"run {run.id}: cannot re-attach: {_error(e)}", "error"))
        drills = RunStore(self.config.state_dir, "drills").all()
        if drills and drills[-1].state == "interrupted":
            newest = drills[-1]
            at = current_step(newest.record()) or "its start"
            self._post(ActionNote(f"drill {newest.id} was interrupted at {at}: d, then u, resumes it", "warning"))

    # -- b, n, r ---------------------------------------------------------------------------------

    def request(self, action: str) -> None:
        """An action key: the preflight in a worker, then (in :meth:`checked`) the confirmation."""
        if action == "pitr":
            self._request_pitr()
            return
        info = self.service.info(action)
        key = self.app.key_of(BINDING_OF[action])
        if action in self._checking:
            self.app.say(f"{key}: {info.title}: still checking…", toast=False)
            return
        self._checking.add(action)
        self.app.say(f"{key}: {info.title} on {info.host}: checking…", toast=False)
        name = f"preflight {action}"
        self.app.run_worker(self._preflight(action), name=name, group=name, exit_on_error=False)

    async def _preflight(self, action: str) -> None:
        try:
            facts = await self.service.preflight(action)
        except ActionRefused as e:
            self._post(ActionChecked(action, None, _error(e)))
        except Exception as e:  # a host that does not answer: one line, never a traceback
            self._post(ActionChecked(action, None, f"{action}: the preflight failed: {_error(e)}", "error"))
        else:
            self._post(ActionChecked(action, facts))

    def _request_pitr(self) -> None:
        """p: the target time first (read-only refuses before it is asked), then the preflight."""
        if "pitr" in self._checking:
            self.app.say(f"{self.app.key_of('pitr')}: point-in-time recovery: still checking…", toast=False)
            return
        if self.read_only:
            self._pitr_target("")
            return
        info = self.service.info("pitr")
        self.app.push_screen(PitrScreen([f"⚠ {info.warning}"], self.app.clock()), self._pitr_target)

    def _pitr_target(self, text: str | None) -> None:
        key = self.app.key_of("pitr")
        if text is None:
            self.app.say(f"{key}: point-in-time recovery: not started (cancelled at the target time)")
            return
        self._checking.add("pitr")
        self.app.say(f"{key}: point-in-time recovery to {text}: checking…", toast=False)
        self.app.run_worker(
            self._preflight_pitr(text), name="preflight pitr", group="preflight pitr", exit_on_error=False
        )

    async def _preflight_pitr(self, text: str) -> None:
        try:
            self._pitr = await self.service.preflight_pitr(text)
        except ActionRefused as e:
            self._post(ActionChecked("pitr", None, _error(e)))
        except Exception as e:  # a host that does not answer: one line, never a traceback
            self._post(ActionChecked("pitr", None, f"pitr: the preflight failed: {_error(e)}", "error"))
        else:
            self._post(ActionChecked("pitr", self._pitr.facts))

    def checked(self, message: ActionChecked) -> None:
        self._checking.discard(message.action)
        if message.problem:
            self.app.say(message.problem, severity=message.severity, toast=True)
            return
        info = self.service.info(message.action)
        lines = [f"⚠ {info.warning}", "", "preflight:"]
        lines += [f"  ✓ {fact}" for fact in message.facts or []]
        typed = info.confirm_text if info.confirm == "typed" else None
        self.app.push_screen(
            ConfirmScreen(f"{info.title} on {info.host}", lines, typed=typed), partial(self._confirmed, message.action)
        )

    def _confirmed(self, action: str, answer: str | None) -> None:
        info = self.service.info(action)
        key = self.app.key_of(BINDING_OF[action])
        if answer is None:
            self.app.say(f"{key}: {info.title}: not started (cancelled at the confirmation)")
            return
        self.app.say(f"{key}: {info.title}: starting…", toast=False)
        self._thread(partial(self._start, action, answer), f"start {action}")

    def _start(self, action: str, confirmation: str) -> None:
        try:
            if action == "pitr" and self._pitr is not None:
                run = self.service.start_pitr(self._pitr, confirmation=confirmation)
            else:
                run = self.service.start(action, confirmation=confirmation)
            self._post(RunAttached(run, "runs", "started", run.plan(), run.record()))
        except ActionRefused as e:
            self._post(ActionNote(_error(e)))
        except Exception as e:
            self._post(ActionNote(f"{action} did not start: {_error(e)}", "error"))

    # -- drills ----------------------------------------------------------------------------------

    def start_drill(self, confirmation: str) -> None:
        self.app.say(f"drill of {self.config.science.host}: starting…", toast=False)
        self._thread(partial(self._start_drill, confirmation), "start drill")

    def _start_drill(self, confirmation: str) -> None:
        try:
            run = self.service.start_drill(confirmation=confirmation)
            self._post(RunAttached(run, "drills", "started", run.plan(), run.record()))
        except ActionRefused as e:
            self._post(ActionNote(_error(e)))
        except Exception as e:
            self._post(ActionNote(f"the drill did not start: {_error(e)}", "error"))

    def resume_drill(self, drill_id: str) -> None:
        self.app.say(f"drill {drill_id}: resuming…", toast=False)
        self._thread(partial(self._resume_drill, drill_id), "resume drill")

    def _resume_drill(self, drill_id: str) -> None:
        try:
            run = self.service.resume_drill(drill_id)
            self._post(RunAttached(run, "drills", "resumed", run.plan(), run.record()))
        except ActionRefused as e:
            self._post(ActionNote(_error(e)))
        except Exception as e:
            self._post(ActionNote(f"drill {drill_id} did not resume: {_error(e)}", "error"))

    # -- following -------------------------------------------------------------------------------

    def attach(self, message: RunAttached) -> None:
        """Follow a run: a tailer thread, a line in the output pane, and its view when it was started here."""
        run = message.run
        old = self.attached.get(run.id)
        if old is not None and not old.ended:
            return
        a = Attachment(run, message.kind, message.plan, message.record, effective_state(message.record))
        self.attached[run.id] = a
        self._thread(partial(self._follow, run), f"tail {run.id}")
        noun = "drill" if a.kind == "drills" else "run"
        if message.how == "started":
            self.app.say(
                f"{noun} {run.id} started: {a.plan_title} on {a.plan_host}; "
                f"{self.app.key_of('view-run')} shows it, {self.app.key_of('cancel-run')} cancels it"
            )
        elif message.how == "resumed":
            self.app.say(f"drill {run.id} resumed at {current_step(a.record) or 'its first unfinished step'}")
        else:
            self.app.say(f"re-attached to {noun} {run.id} ({describe(a.record)})")
        if message.how != "re-attached":
            self.app.poll_panels(AFFECTED.get(a.action, ()))
        self.app.refresh_bindings()
        adopted = False
        for screen in self.app.screen_stack:
            if isinstance(screen, DrillScreen) and a.kind == "drills" and screen.may_adopt(run.id):
                screen.adopt(a)
                adopted = True
        if message.how == "started" and not adopted:
            self.app.push_screen(DrillScreen(a) if a.kind == "drills" else RunScreen(a))

    def _follow(self, run: Run) -> None:
        follow(run, self.app.post_message, get_current_worker().cancelled_event)

    def updated(self, message: RunUpdated) -> None:
        """One tailer batch: keep the lines, announce a new step, refresh the views showing the run."""
        a = self.attached.get(message.run_id)
        if a is None:
            return
        a.lines.extend(message.lines)
        if message.record is not None:
            before = a.record.get("current_step")
            a.record = message.record
            if message.record.get("current_step") != before and message.state in ACTIVE:
                self.app.say(f"run {a.run.id}: {current_step(a.record)}", toast=False)
        a.state = message.state
        if message.ended:
            a.ended = True
            if a.kind == "drills":
                a.report = read_report(a.run)
        for screen in self.app.screen_stack:
            if isinstance(screen, (RunScreen, DrillScreen)) and screen.shows(a.run.id):
                screen.add_lines(message.lines)
                screen.show()
        if message.ended:
            self._ended(a)

    def _ended(self, a: Attachment) -> None:
        if a.kind == "drills" and a.report:
            text = f"drill {a.run.id}: " + "; ".join(drill_summary(a.report, str(a.run.path / "report.md")))
            severity = severity_of(a.report.get("outcome", "failed"))
        else:
            text = outcome_line(a.run.id, a.record, a.state, utc_now())
            severity = severity_of(a.state)
        self.app.say(text, severity=severity, toast=True)
        self.app.poll_panels(AFFECTED.get(a.action, ()))
        self.app.refresh_bindings()

    # -- v, c -------------------------------------------------------------------------------------

    def selected(self) -> Attachment | None:
        """The run on view when it is running, else the newest running attached run."""
        shown = getattr(self.app.screen, "attachment", None)
        if isinstance(shown, Attachment) and not shown.ended:
            return shown
        running = self.running
        return running[-1] if running else None

    def view(self) -> None:
        """Show the next attached run (the newest first; again: the one before it)."""
        if not self.attached:
            self.app.say(f"{self.app.key_of('view-run')}: no run attached: b, n or r starts one, d a drill")
            return
        order = list(reversed(self.attached.values()))
        shown = getattr(self.app.screen, "attachment", None)
        a = order[(order.index(shown) + 1) % len(order)] if shown in order else order[0]
        if isinstance(self.app.screen, (RunScreen, DrillScreen)):
            self.app.pop_screen()
        self.app.push_screen(DrillScreen(a) if a.kind == "drills" else RunScreen(a))

    def request_cancel(self) -> None:
        """c: a y/n question naming the run, then a cancel of its whole process group."""
        key = self.app.key_of("cancel-run")
        if self.read_only:
            self.app.say(
                f"{key}: cancel refused: read-only mode (--read-only or read_only: true in the config)",
                severity="warning",
                toast=True,
            )
            return
        a = self.selected()
        if a is None:
            self.app.say(f"{key}: no attached run is running: nothing to cancel", toast=True)
            return
        lines = [
            f"{a.plan_title} on {a.plan_host}",
            f"now at {current_step(a.record) or 'its start'}",
            "",
            "The whole process group of its supervisor is stopped: the step under way is killed;",
            "the steps already done are not undone.",
        ]
        self.app.push_screen(
            ConfirmScreen(
                f"Cancel {'drill' if a.kind == 'drills' else 'run'} {a.run.id}?",
                lines,
                yes="Cancel the run",
                no="Keep it running",
            ),
            partial(self._cancel_confirmed, a),
        )

    def _cancel_confirmed(self, a: Attachment, answer: str | None) -> None:
        if answer is None:
            self.app.say(f"cancel not sent: run {a.run.id} goes on")
            return
        self._thread(partial(self._cancel, a.run, a.action), f"cancel {a.run.id}")

    def _cancel(self, run: Run, action: str) -> None:
        try:
            self.service.cancel(run.id)
        except ConsoleError as e:
            self._post(ActionNote(f"cancel failed: {_error(e)}", "error"))
        else:
            self._post(ActionNote(f"run {run.id}: cancel sent", "information"))
