"""text.clean / one_line / clean_json: the one sanitizer for host text (findings 6, 19)."""

from __future__ import annotations

import json
import re

import pytest

from montagu_console.text import (
    MAX_LINE_CHARS,
    REPLACEMENT,
    TRUNCATED,
    clean,
    clean_data,
    clean_json,
    one_line,
)

R = REPLACEMENT
# what must never survive: C0 controls but \t and \n, DEL, C1, bidi controls, line separators
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

PAYLOADS = [
    "\x1b]0;pwned\x07",  # OSC 0: window title
    "\x1b]52;c;aGk=\x07",  # OSC 52: clipboard write
    "\x1b]8;;file:///etc/passwd\x1b\\x\x1b]8;;\x1b\\",  # OSC 8 hyperlink, ST-terminated
    "\x1b[2J\x1b[H",  # CSI clear screen, home
    "\x9b2J",  # 8-bit CSI
    "\x9d0;pwned\x9c",  # 8-bit OSC
    "\x1bP1$r\x1b\\",  # DCS
    "a\x00b\x7fc\x85d",  # NUL, DEL, NEL
    "evil\u202egnp.exe",  # right-to-left override
    "line\u2028sep",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_clean_leaves_no_control_character(payload):
    out = clean(payload)
    assert not UNSAFE.search(out), repr(out)
    assert R in out


def test_escape_sequences_go_as_one_replacement_each():
    assert clean("a\x1b]0;pwned\x07b\x1b[2Jc") == f"a{R}b{R}c"
    assert clean("x\x1b]52;c;aGk=\x07y") == f"x{R}y"


def test_markup_is_left_as_text():
    # markup is the views' business (they show Text, never markup): clean keeps the characters
    for s in ["[/]", "[link=file:///etc/passwd]x[/link]", "[@click=app.quit]x[/]"]:
        assert clean(s) == s


def test_invalid_utf8_and_carriage_returns():
    assert clean(b"ok\xff\xfe!") == f"ok{R}{R}!"
    assert clean("progress 10%\rprogress 20%\r\ndone") == "progress 10%\nprogress 20%\ndone"


def test_unterminated_osc_does_not_swallow_the_next_lines():
    assert clean("a\x1b]0;title\nnext line\n") == f"a{R}\nnext line\n"


def test_newlines_and_tabs_are_kept():
    assert clean("a\tb\nc") == "a\tb\nc"


def test_cap_on_bytes_and_text():
    assert clean(b"x" * 100, limit=10) == "x" * 10 + TRUNCATED
    assert clean("y" * 100, limit=10) == "y" * 10 + TRUNCATED
    assert clean("z" * 10, limit=10) == "z" * 10


def test_one_line_folds_and_caps():
    assert one_line("MONTAGU WARNING\nMONTAGU OK - forged\r\tx") == "MONTAGU WARNING MONTAGU OK - forged x"
    assert "\n" not in one_line("a\u2028b\x85c")
    long = one_line("w " * 5000)
    assert len(long) <= MAX_LINE_CHARS + len(TRUNCATED) and long.endswith(TRUNCATED.strip())


def test_clean_json_cleans_decoded_strings_keys_and_values():
    raw = json.dumps({"hint\u001b[2J": "\u001b]0;pwned\u0007 ok", "list": ["\u0000", 3, None, True]})
    assert "\x1b" not in raw  # valid JSON escapes controls: cleaning the raw text alone is not enough
    data = clean_json(raw)
    assert data == {f"hint{R}": f"{R} ok", "list": [R, 3, None, True]}


def test_clean_json_refuses_what_is_not_json():
    for bad in ["", "{", "[1,]", "\x1b]0;x\x07", "[" * 100000]:
        with pytest.raises(ValueError):
            clean_json(bad)


def test_clean_json_nan_and_infinity_are_none():
    assert clean_json('{"a": NaN, "b": Infinity, "c": -Infinity}') == {"a": None, "b": None, "c": None}


def test_clean_data_walks_nested_values():
    assert clean_data({"a": [{"b": ("\x07", 1.5)}]}) == {"a": [{"b": [R, 1.5]}]}


def test_clean_is_idempotent_on_clean_text():
    once = clean("a\x1b[31mred\x1b[0m\n\xff".encode("latin-1"))
    assert clean(once) == once
