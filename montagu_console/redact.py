"""Remove secrets from any text before it reaches the screen, a log, a report or the audit file."""

from __future__ import annotations

import re

_PATTERNS = [
    (re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s'\",;]+)"), r"\1*REDACTED*"),
    (re.compile(r"(?i)((?:PGPASSWORD|[A-Z_]*PASS(?:WORD)?[A-Z_]*)=)([^\s'\",;]+)"), r"\1*REDACTED*"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)"), r"\1*REDACTED*\3"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
     "*REDACTED PRIVATE KEY*"),
]


def redact(text: str) -> str:
    """``text`` with passwords, passwords in URLs and private keys replaced by *REDACTED*."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_data(value):
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value
