"""The Textual app: wires the collector's results and the action layer into the screens, keys,
themes and the watchdog.

Workers (see :mod:`.poller`, :mod:`.operator`, :mod:`.tailer`) only collect and post messages; the
handlers here own every widget update, and every update is skipped when what is shown would not
change. Every worker runs on the app with ``exit_on_error=False``, and one handler
(:meth:`MontaguApp.on_worker_state_changed`) reports a worker that failed: one redacted line in
the output pane and a toast, never a traceback, never the app torn down. Screens reach the app
through :class:`~.host.ConsoleHost` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.app import App, SystemCommand
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from ..actions.runs import Run
from ..clock import utc_now
from ..config import Config
from ..errors import ConsoleError
from ..history import PanelRecorder
from ..redact import redact
from ..snapshot import PANELS, PanelResult, Status
from ..text import one_line
from .host import ConsoleHost, Severity
from .keys import BY_ID, KEYS, bindings, check_keymap, display_keys
from .messages import ActionChecked, ActionNote, PanelUpdated, RunAttached, RunUpdated
from .operator import BINDING_OF, Operator
from .poller import Collector, Poller
from .present import (
    STALE,
    PanelView,
    TrendData,
    backup_age_trend,
    fmt_period,
    fmt_time,
    lag_trend,
    overall,
    panel_hosts,
    panel_titles,
    panel_view,
)
from .present_runs import current_step
from .screens.confirm import ConfirmScreen
from .screens.detail import DETAIL_SCREENS, DetailScreen
from .screens.drill import DrillScreen
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.main import MainScreen
from .screens.trends import TrendsScreen
from .themes import DEFAULT_THEME, available_themes, load_theme
from .watchdog import TerminalGuard
from .widgets.header import StatusHeader

PERIOD_STEPS = (1, 2, 3, 5, 10, 15, 30, 60, 120, 300, 600)  # seconds; + and - move along these
LAG_SAMPLES = 60
CLOSE_TIMEOUT = 5.0
AGES_TICK_SECONDS = 5.0  # ages and STALE are re-drawn this often between polls (each redraw costs CPU)


def worker_error(error: BaseException | None) -> str:
    """A failed worker's error as one redacted line (a ConsoleError says it all; others are named)."""
    if error is None:
        return "no error recorded"
    text = str(error) if isinstance(error, ConsoleError) else f"{type(error).__name__}: {error}"
    return one_line(redact(text), limit=500)


class MontaguApp(App[None]):
    """The montagu-console TUI.

    ``collector`` has ``async panel(name) -> PanelResult`` and ``async close()``; the app closes
    it when it exits. ``theme`` and ``read_only`` override the config; ``clock`` returns an aware
    UTC datetime (tests freeze it). Raises ConsoleError for an unknown theme or a bad keymap.
    """

    CSS_PATH = Path(__file__).resolve().parent / "montagu.tcss"  # absolute: subclasses elsewhere find it too
    TITLE = "montagu-console"
    BINDINGS = bindings("app")
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012 - typed so by Textual

    def __init__(
        self,
        config: Config,
        collector: Collector,
        *,
        theme: str | None = None,
        read_only: bool | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        check_keymap(config.keys)
        theme_name = theme or config.theme or DEFAULT_THEME
        load_theme(theme_name)  # raises ConsoleError naming the available themes
        for name in available_themes():
            self.register_theme(load_theme(name))
        self.theme = theme_name
        self.config = config
        self.collector = collector
        self.read_only = config.read_only if read_only is None else read_only
        self.clock = clock or utc_now
        self.results: dict[str, PanelResult] = {}
        self.last_good: dict[str, PanelResult] = {}  # newest result per panel that carried facts
        self.lag_history: deque[float] = deque(maxlen=LAG_SAMPLES)
        self.last_refresh: datetime | None = None
        self.poller = Poller(
            self, collector, float(config.refresh_seconds), self.clock, recorder=PanelRecorder.of(config)
        )
        self._titles = panel_titles(config)
        self._hosts = panel_hosts(config)
        self._words: dict[str, str] = {}
        self._main = MainScreen(self._titles)
        self._guard = TerminalGuard(self)
        self.operator = Operator(self)

    @property
    def attached_runs(self) -> list[Run]:
        """The runs this console follows whose supervisor has not finished: quit asks first."""
        return [a.run for a in self.operator.running]

    # -- life cycle ----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return self._main

    def on_mount(self) -> None:
        self.set_keymap(self.config.keys)
        if not self.is_headless:
            self._guard.install()

    def on_ready(self) -> None:
        """The first frame is painted: say where we point, then start polling."""
        self.say(
            f"watching {self.config.barman.server} from {self.config.path}; every panel is polled every "
            f"{fmt_period(self.poller.period)}" + (" (read-only)" if self.read_only else "")
        )
        self.update_views()
        self.poller.start()
        self.set_interval(AGES_TICK_SECONDS, self.update_views, name="ages")
        self.operator.reattach()

    async def on_unmount(self) -> None:
        if not self.is_headless:
            self._guard.remove()
        # exiting anyway: a host that hangs or fails on close must not hold the terminal
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.collector.close(), CLOSE_TIMEOUT)

    # -- results -------------------------------------------------------------------------------

    def on_panel_updated(self, message: PanelUpdated) -> None:
        if not self.is_running:  # shutting down: the widgets are being removed
            return
        result = message.result
        name = result.name
        previous = self.results.get(name)
        self.results[name] = result
        self.last_refresh = self.clock()
        if result.detail is not None:
            self.last_good[name] = result
            if name == "wal" and result.facts.get("lag_bytes") is not None:
                self.lag_history.append(float(result.facts["lag_bytes"]))
        if previous is None and result.status is not Status.OK:
            self.say(f"{name}: {result.status.value}: {result.summary}")
        elif previous is not None and previous.status is not result.status:
            self.say(f"{name}: {previous.status.value} -> {result.status.value}: {result.summary}")
        self.update_views()

    def panel_views(self) -> dict[str, PanelView]:
        """What every panel should show at this moment."""
        now = self.clock()
        views = {}
        for name in PANELS:
            since = self.poller.polling_since(name)
            views[name] = panel_view(
                name,
                self.results.get(name),
                self.last_good.get(name),
                now=now,
                period=self.poller.period,
                host=self._hosts[name],
                polling_for=None if since is None else (now - since).total_seconds(),
                trend=self._trend(name, now),
            )
        return views

    def _trend(self, name: str, now: datetime) -> TrendData | None:
        if name == "wal":
            return self.lag_trend()
        good = self.last_good.get(name)
        if name == "barman" and good is not None:
            return backup_age_trend(good.detail, now, self.config)
        return None

    def update_views(self) -> None:
        """Bring the header, the panels and any open detail view up to date (cheap when nothing changed)."""
        if not self.is_running:  # shutting down: the widgets are being removed
            return
        views = self.panel_views()
        for name, view in views.items():
            self._main.panel(name).show(view)
            was = self._words.get(name)
            if view.word == STALE and was != STALE:
                self.say(f"{name}: STALE: {view.summary}")
            elif was == STALE and view.word != STALE:
                self.say(f"{name}: answering again: {view.word}: {view.summary}")
            self._words[name] = view.word
        when = (
            f"refreshed {fmt_time(self.last_refresh)}" if self.last_refresh else "first poll running"
        ) + f" · every {fmt_period(self.poller.period)}"
        self._main.query_one("#header", StatusHeader).show(
            overall(views).value, self._header_title(), when, read_only=self.read_only
        )
        for screen in self.screen_stack:
            if isinstance(screen, DetailScreen) and screen.is_mounted:
                self.show_detail(screen, views)

    def show_detail(self, screen: DetailScreen, views: dict[str, PanelView] | None = None) -> None:
        """Bring one detail view up to date."""
        view = (views or self.panel_views())[screen.panel]
        screen.show(self.results.get(screen.panel), self.last_good.get(screen.panel), view, self.clock())

    def _header_title(self) -> str:
        return f"{self.config.barman.server} on {self.config.barman.host} · {self.config.path.name}"

    # -- output --------------------------------------------------------------------------------

    def say(self, text: str, *, severity: Severity = "information", toast: bool | None = None) -> None:
        """Write a timestamped line to the output pane, and a toast when ``toast`` (by default: when the
        pane is not in view). Both show ``text`` as it is, never as markup."""
        self._main.write(Text(f"{fmt_time(self.clock())} {text}"))
        if toast or (toast is None and self.screen is not self._main):
            self.notify(text, severity=severity, markup=False)

    def open_screen(self, screen: Screen[Any]) -> None:
        """Show ``screen`` over the current one."""
        self.push_screen(screen)

    def ask(self, screen: ModalScreen[Any], then: Callable[[Any], None]) -> None:
        """Show the question ``screen``; ``then`` gets its answer."""
        self.push_screen(screen, then)

    def run_thread(self, work: Callable[[], None], name: str) -> None:
        """Run blocking ``work`` in a thread worker; a failure is reported by :meth:`on_worker_state_changed`."""
        self.run_worker(work, name=name, group=name, thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one handler of failed workers: a redacted line in the output pane and a toast."""
        if event.state is WorkerState.ERROR:
            self.say(
                f"{event.worker.name or 'a worker'} failed: {worker_error(event.worker.error)}",
                severity="error",
                toast=True,
            )

    def lag_trend(self) -> TrendData:
        """The WAL lag of the recent polls, against its WARNING threshold."""
        return lag_trend(tuple(self.lag_history), self.config)

    def start_drill(self, confirmation: str) -> None:
        self.operator.start_drill(confirmation)

    def resume_drill(self, drill_id: str) -> None:
        self.operator.resume_drill(drill_id)

    def key_of(self, binding_id: str) -> str:
        """The keys bound to ``binding_id`` as the operator sees them ("n", "esc")."""
        return display_keys(BY_ID[binding_id], self.config.keys)

    def poll_panels(self, names: Iterable[str]) -> None:
        """Poll ``names`` now (a run changed what they show); a panel polling already is left alone."""
        for name in names:
            self.poller.poll(name)

    def restore_facts(self) -> dict:
        """The science restore panel's newest facts (redo progress, the last drill)."""
        good = self.last_good.get("restore")
        return good.facts if good is not None else {}

    def barman_facts(self) -> dict:
        """The barman panel's newest facts, never older ones: a backup's progress is now or nothing."""
        result = self.results.get("barman")
        return result.facts if result is not None else {}

    # -- actions (see :mod:`.operator`) --------------------------------------------------------

    def on_action_checked(self, message: ActionChecked) -> None:
        self.operator.checked(message)

    def on_action_note(self, message: ActionNote) -> None:
        self.say(message.text, severity=message.severity, toast=True)

    def on_run_attached(self, message: RunAttached) -> None:
        if self.is_running:
            self.operator.attach(message)

    def on_run_updated(self, message: RunUpdated) -> None:
        if self.is_running:
            self.operator.updated(message)

    # -- keys ----------------------------------------------------------------------------------

    def open_details(self, name: str) -> None:
        """Push the detail view of panel ``name``."""
        self.push_screen(DETAIL_SCREENS[name](name, self._titles[name]))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.config.keys))

    def action_refresh(self) -> None:
        self.collector.read_in_full()  # barman's full commands at once, not at their next turn
        started = [name for name in PANELS if self.poller.poll(name)]
        busy = [name for name in PANELS if name not in started]
        text = f"refresh: polling {', '.join(started)}" if started else "refresh: nothing started"
        if busy:
            text += f" ({', '.join(busy)} still polling: not starting another)"
        self.say(text)
        self.update_views()

    def action_faster(self) -> None:
        self._set_period(max((s for s in PERIOD_STEPS if s < self.poller.period), default=PERIOD_STEPS[0]))

    def action_slower(self) -> None:
        self._set_period(min((s for s in PERIOD_STEPS if s > self.poller.period), default=PERIOD_STEPS[-1]))

    def _set_period(self, period: float) -> None:
        old = self.poller.period
        if period == old:
            self.say(f"refresh period stays {fmt_period(old)} (limits: {PERIOD_STEPS[0]} s to {PERIOD_STEPS[-1]} s)")
            return
        self.poller.set_period(period)
        self.say(f"refresh every {fmt_period(period)} (was {fmt_period(old)})")
        self.update_views()

    def action_act(self, action: str) -> None:
        self.operator.request(action)

    def action_cancel(self) -> None:
        self.operator.request_cancel()

    def action_view_run(self) -> None:
        self.operator.view()

    def action_drill(self) -> None:
        """The drill wizard: on the drill this console follows, else the newest unfinished or a new one."""
        if isinstance(self.screen, DrillScreen):
            return
        drills = [a for a in self.operator.attached.values() if a.kind == "drills"]
        running = [a for a in drills if not a.ended]
        shown = running or drills
        self.push_screen(DrillScreen(shown[-1] if shown else None))

    def action_history(self) -> None:
        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen())

    def action_trends(self) -> None:
        """The trend screen; on it, switch between hours and days."""
        if isinstance(self.screen, TrendsScreen):
            self.screen.switch_span()
        else:
            self.push_screen(TrendsScreen(self.clock))

    async def action_quit(self) -> None:
        """Quit; when a followed run is still running, ask first (it goes on, detached)."""
        running = self.operator.running
        if not running:
            self.exit()
            return
        lines = [
            f"{'drill' if a.kind == 'drills' else 'run'} {a.run.id}: {a.action}, {current_step(a.record) or 'starting'}"
            for a in running
        ]
        lines += [
            "",
            f"{'It continues' if len(running) == 1 else 'They continue'} detached; the next console re-attaches to it.",
        ]
        self.push_screen(
            ConfirmScreen("Quit while a run is running?", lines, yes="Quit", no="Stay"),
            lambda answer: self.exit() if answer else None,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim (None) what cannot run now: actions in read-only mode, cancel or view without a run."""
        if action == "act" and self.read_only:
            return None
        if action == "cancel" and (self.read_only or not self.operator.running):
            return None
        if action == "view_run" and not self.operator.attached:
            return None
        return True

    def on_key(self, event: events.Key) -> None:
        """A dimmed key does nothing in Textual: say why instead (read-only: the action layer says so)."""
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        active = screen.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        binding_id = active.binding.id or ""
        actions = {b: a for a, b in BINDING_OF.items()}
        if binding_id in actions:
            self.operator.request(actions[binding_id])
        elif binding_id == "cancel-run":
            self.operator.request_cancel()
        elif binding_id == "view-run":
            self.operator.view()
        elif isinstance(screen, DrillScreen):
            screen.explain(binding_id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette: every binding of this screen and the app, then Textual's own commands."""
        scopes = getattr(screen, "SCOPES", ())
        for spec in KEYS:
            if spec.scope == "app" or spec.scope in scopes:
                target = self if spec.scope == "app" else screen
                yield SystemCommand(
                    f"{spec.help} ({display_keys(spec, self.config.keys)})",
                    f"binding id {spec.id}",
                    partial(target.run_action, spec.action),
                )
        yield from super().get_system_commands(screen)


def _is_a_host(app: MontaguApp) -> ConsoleHost:
    return app  # mypy checks here that the app provides everything a screen may ask of it
