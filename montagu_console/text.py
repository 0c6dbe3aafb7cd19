"""The one boundary for text that comes from a host.

Command output, files, log lines and database values may carry terminal control sequences,
Rich or Textual markup, invalid UTF-8, NUL bytes or gigabytes. Everything a host sends passes
:func:`clean` once, where it enters the console (transports and probes), so nothing after
this point has to distrust it: control characters are replaced by a visible ``\\N{REPLACEMENT
CHARACTER}`` (newlines and tabs kept), and the size is capped. Views still show such text as
``rich.text.Text``, never as markup. :func:`one_line` is for places that must stay one line
(a Nagios status line, a table cell, a summary).
"""

from __future__ import annotations

import json
import re
from typing import Any

# caps: what a host may send in one piece (a command's output, a file, a line)
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_LINE_CHARS = 2000

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
TRUNCATED = " [... truncated]"

# C0 controls except \t and \n, DEL, C1 controls, Unicode's bidi marks, overrides and isolates,
# and the line / paragraph separators (which Python's splitlines() and some viewers break on)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# a whole escape sequence (CSI, OSC, DCS...) goes as one replacement character, not as debris;
# an unterminated string sequence ends at the line's end, so it cannot swallow the next lines
_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[PX^_][^\x1b\n]*(?:\x1b\\)?|.?)"
    r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c\n]*[\x07\x9c]?"
)


def clean(data: str | bytes, *, limit: int = MAX_OUTPUT_BYTES) -> str:
    """``data`` as safe text: decoded (invalid UTF-8 replaced), controls replaced, at most ``limit`` characters.

    ``\\r\\n`` becomes ``\\n``; a lone ``\\r`` (progress redraws) becomes ``\\n`` too, so no line
    can overwrite another on a terminal.
    """
    if isinstance(data, bytes):
        cut = len(data) > limit
        text = data[:limit].decode("utf-8", "replace")
    else:
        cut = len(data) > limit
        text = data[:limit]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(REPLACEMENT, _ESCAPE.sub(REPLACEMENT, text))
    return text + TRUNCATED if cut else text


def one_line(data: str | bytes, *, limit: int = MAX_LINE_CHARS) -> str:
    """:func:`clean` text folded into one line (newlines and tabs become spaces), capped at ``limit``."""
    text = " ".join(clean(data, limit=limit).split())
    return text


def clean_data(value: Any, *, limit: int = MAX_OUTPUT_BYTES) -> Any:
    """``value`` (decoded JSON: dicts, lists, scalars) with every string key and value through :func:`clean`.

    Valid JSON escapes control characters (``"\\u001b]0;x\\u0007"``), so cleaning the raw text
    does not clean what ``json.loads`` gives back: this does. Other scalars are kept as they are.
    """
    if isinstance(value, str):
        return clean(value, limit=limit)
    if isinstance(value, dict):
        return {
            clean(k, limit=limit) if isinstance(k, str) else k: clean_data(v, limit=limit) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [clean_data(v, limit=limit) for v in value]
    return value


def clean_json(text: str | bytes) -> Any:
    """Decode JSON from a host with every string in it cleaned; ValueError if it is not JSON.

    ``NaN`` and ``Infinity`` (which Python's json accepts) decode as None, and nesting too deep
    to decode is a ValueError like any other unreadable document.
    """
    try:
        return clean_data(json.loads(text, parse_constant=lambda _: None))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except TypeError as e:  # not str or bytes at all
        raise ValueError(str(e)) from None
