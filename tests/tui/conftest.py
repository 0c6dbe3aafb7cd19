"""Fixtures for the TUI tests: a config, the fake collector and a way to run the app on it."""

from __future__ import annotations

import time
from typing import Callable

import pytest
import tui_fakes

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
        return MontaguApp(tui_fakes.make_config(**config_fields), collector, theme=theme, read_only=read_only,
                          clock=clock or tui_fakes.frozen())

    return build
