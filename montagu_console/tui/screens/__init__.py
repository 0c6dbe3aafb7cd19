"""Screens of the console: main, detail views, help."""
