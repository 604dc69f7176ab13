"""AUTOMATIC1111's `parameters` text: the prompt, "Negative prompt: ...", and one "Key: value, ..." line.

Values containing `,` `:` or a newline are JSON-quoted. A1111 splits the last line with PARAM_RE and treats
it as the settings line only when it has at least 3 matches.
"""
from __future__ import annotations

import json
import re
from typing import Any

PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# The same pairs in one pass. Used with re.findall, A1111's pattern restarts at every character of a run of
# key characters not followed by ':' and rescans the whole run: quadratic, so one long line (a PNG with
# megabytes of text) held a server thread for hours. The extra alternatives consume a run that cannot start
# a pair, and runs of blanks, so no character is scanned more than a few times; the pairs are unchanged.
_PAIR_SCAN = re.compile(PARAM_RE.pattern + r'|\s*\w[\w \-/]*|\s+|[\s\S]')
NEGATIVE_PREFIX = "Negative prompt:"


def a1111_pairs(line: str) -> list[tuple[str, str]]:
    """What `PARAM_RE.findall(line)` returns, in time linear in the line's length."""
    return [match.group(1, 2) for match in _PAIR_SCAN.finditer(line) if match.group(1) is not None]


def quote(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in ",:\n") or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            return text
    return text


def number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def settings_line(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {quote(value)}" for key, value in params.items() if value is not None)


KEY_RE = re.compile(r"\s*(\w[\w \-/]+):\s*(.*)", re.S)
BARE_RE = re.compile(r"\s*\w[\w\-/]*\s*")


def _pieces(line: str) -> list[str]:
    """The line split at commas outside quotes and outside {...} / [...] (unquoted JSON some writers add)."""
    pieces, depth, quoted, escaped, start = [], 0, False, False, 0
    for i, ch in enumerate(line):
        if quoted:
            escaped, quoted = (not escaped and ch == "\\"), quoted and (escaped or ch != '"')
        elif ch == '"':
            quoted = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            pieces.append(line[start:i])
            start = i + 1
    return [*pieces, line[start:]]


def parse_settings_line(line: str) -> dict[str, str]:
    """{key: unquoted value}: A1111's PARAM_RE reading, also keeping unquoted JSON values whole; a piece that
    is not "Key: value" belongs to the value before it (an unquoted comma)."""
    params: dict[str, str] = {}
    key = None
    for piece in _pieces(line):
        match = KEY_RE.fullmatch(piece)
        if match:
            key = match.group(1).strip()
            params[key] = match.group(2).strip()
        elif BARE_RE.fullmatch(piece):  # A1111 writes a setting whose value is its own name without ": value"
            params[piece.strip()] = piece.strip()
        elif key is not None and piece.strip():
            params[key] += "," + piece
    return {key: unquote(value) for key, value in params.items()}


def split_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, {key: unquoted value}) of an A1111 `parameters` text."""
    lines = text.strip().replace("\r\n", "\n").split("\n")
    params: dict[str, str] = {}
    if lines and len(a1111_pairs(lines[-1])) >= 3:
        params = parse_settings_line(lines.pop())
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.strip().startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line.strip()[len(NEGATIVE_PREFIX):].strip()
        (negative if in_negative else prompt).append(line)
    return "\n".join(prompt).strip(), "\n".join(negative).strip(), params


def looks_like_parameters(text: str) -> bool:
    """Whether a text has an A1111 settings line (the test A1111 itself applies)."""
    last = text.strip().replace("\r\n", "\n").rsplit("\n", 1)[-1]
    return len(a1111_pairs(last)) >= 3
