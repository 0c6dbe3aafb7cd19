"""Screens of the console: main, detail views, help, confirmation, run view, drill wizard, drill history."""
