"""Fixtures for the TUI tests: a config, the fake collector, real runs on a temporary state_dir, and the app on them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import tui_fakes
import tui_runs

from montagu_console.actions.runs import RunStore
from montagu_console.tui.app import MontaguApp


@pytest.fixture(autouse=True)
def utc_local_time(monkeypatch):
    """Times are shown in the local zone; pin it so screens are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def make_app() -> Callable[..., MontaguApp]:
    """``make_app(results=..., collector=..., clock=..., **config_fields)`` builds an app on fake data."""

    def build(results=None, *, collector=None, clock=None, theme=None, read_only=None, **config_fields):
        collector = collector or tui_fakes.FakeCollector(results or tui_fakes.healthy())
        return MontaguApp(
            tui_fakes.make_config(**config_fields),
            collector,
            theme=theme,
            read_only=read_only,
            clock=clock or tui_fakes.frozen(),
        )

    return build


@pytest.fixture
def action_app(tmp_path, monkeypatch) -> Iterator[Callable[..., MontaguApp]]:
    """``action_app(steps=..., preflight=..., read_only=...)``: the app on a config on disk, a real
    ActionService and real detached supervisors, with plans of shell steps (:mod:`tui_runs`) and a
    preflight that checks nothing. Supervisors still running at the end are stopped."""
    config = tui_runs.write_config(tmp_path)

    def build(*, steps=None, preflight=tui_runs.passing_preflight, read_only=None, collector=None):
        tui_runs.fake_actions(monkeypatch, steps, preflight)
        return MontaguApp(
            config,
            collector or tui_fakes.FakeCollector(tui_fakes.healthy()),
            read_only=read_only,
            clock=tui_fakes.frozen(),
        )

    build.config = config
    yield build
    for kind in ("runs", "drills"):
        for run in RunStore(config.state_dir, kind).active():
            with contextlib.suppress(OSError):
                os.killpg(run.record()["pid"], signal.SIGKILL)


@pytest.fixture
def fake_supervisor() -> Iterator[Callable[..., subprocess.Popen]]:
    """``fake_supervisor(run, rate=..., seconds=..., step=...)`` starts :mod:`fake_supervisor` on a run;
    killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(run, **kw) -> subprocess.Popen:
        procs.append(tui_runs.start_fake_supervisor(run, **kw))
        return procs[-1]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
