"""Widgets of the console: status words, panels, the header, steady tables."""
