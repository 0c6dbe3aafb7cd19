"""Remove secrets from any text before it reaches the screen, a log, a report or the audit file.

Covered: ``password=...`` / ``password: ...`` (bare, single- or double-quoted, with escaped
quotes), JSON ``"password": "..."`` and the other secret-named keys, env assignments whose name
says PASS, SECRET, TOKEN or KEY, ``Authorization:`` headers, URL user-info passwords (an ``@``
inside the password included), tokens in an http(s) URL's path or query (webhooks), and
private key blocks. ``redact_data`` also blanks the value of any secret-named key of a dict.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "*REDACTED*"

# key names whose value is a secret, wherever they appear
_SECRET_KEY = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?token)"
# the words of an environment variable's name that make it secret (PGPASSWORD, BARMAN_PASS_BACKUP, AWS_SECRET_KEY)
_ENV_SECRET = r"(?:[A-Z0-9]*PASS(?:WORD)?|PASSWD|SECRET|TOKEN|KEY)"

_SECRET_NAME = re.compile(rf"(?i:^(?:[a-z0-9_.-]*[_.-])?{_SECRET_KEY}$)|^(?:[A-Z0-9]+_)*{_ENV_SECRET}(?:_[A-Z0-9]+)*$")

_QUOTED = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
        "*REDACTED PRIVATE KEY*",
    ),
    # JSON / dict reprs: "password": "x", 'token': 'y'
    (re.compile(rf"(?i)([\"']{_SECRET_KEY}[\"']\s*:\s*)({_QUOTED}|[^\s,}}\]]+)"), rf"\1\"{MASK}\""),
    # conninfo and config forms: password=x, password = 'a\'b', secret: y
    (re.compile(rf"(?i)(\b{_SECRET_KEY}\s*[=:]\s*)({_QUOTED}|[^\s'\",;&]+)"), rf"\1{MASK}"),
    # environment assignments: PGPASSWORD=x, BARMAN_PASS_BACKUP=x, GITHUB_TOKEN=x, AWS_SECRET_ACCESS_KEY=x
    (re.compile(rf"\b((?:[A-Z0-9]+_)*{_ENV_SECRET}(?:_[A-Z0-9]+)*=)({_QUOTED}|[^\s'\",;]+)"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\bauthorization\s*[:=]\s*)(?:(bearer|basic|token)\s+)?([^\s,;]+)"), rf"\1\2 {MASK}"),
    # user-info of any URL: everything between the first ':' after the scheme and the LAST '@'
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^\s/]*)(@)(?=[^\s@/]*(?:[/\s]|$))"), rf"\1{MASK}\3"),
]

# http(s) URLs: their path beyond the first segment and their query values may be tokens
_HTTP_URL = re.compile(r"(?i)\b(https?://[^\s/?#'\"]+)((?:/[^\s?#'\"]*)?)((?:\?[^\s#'\"]*)?)")


def _url(match: re.Match[str]) -> str:
    base, path, query = match.group(1), match.group(2), match.group(3)
    parts = path.split("/")
    if len(parts) > 2 and any(parts[2:]):
        path = "/".join(parts[:2]) + "/" + MASK
    if query:
        query = "?" + "&".join(f"{p.split('=', 1)[0]}={MASK}" if "=" in p else MASK for p in query[1:].split("&") if p)
    return base + path + query


def redact(text: str) -> str:
    """``text`` with every secret form above replaced by *REDACTED*."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return _HTTP_URL.sub(_url, text)


def is_secret_name(name: str) -> bool:
    """Whether a key or variable name says its value is a secret (``password``, ``API_TOKEN``...)."""
    return bool(_SECRET_NAME.match(name))


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted and secret-named keys blanked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_name(k) and v is not None else redact_data(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value
