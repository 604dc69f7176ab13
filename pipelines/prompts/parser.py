"""Attention syntax of AUTOMATIC1111 prompts: `(a)`, `(a:1.3)`, `[a]`, escapes and `BREAK`.

    parse_prompt("a (red:1.3) [circle] BREAK on white")
    -> [("a ", 1.0), ("red", 1.3), (" ", 1.0), ("circle", 1/1.1), BREAK, ("on white", 1.0)]

`(text)` multiplies the weight of what it holds by 1.1, `[text]` by 1/1.1, `(text:x)` by x; brackets nest and
multiply, and an unclosed one applies to the rest of the prompt. `\\(`, `\\)`, `\\[`, `\\]` and `\\\\` are the
literal characters. A bracket that closes nothing is plain text. Neighbouring pieces of equal weight are
merged, so a prompt without brackets comes back as one piece, unchanged. `BREAK` (the whole word, in capitals)
ends the current 75-token chunk; unlike A1111, a BREAK inside brackets still breaks (A1111 turns it into the
word "BREAK" with a negative weight).
"""
from __future__ import annotations

import re

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK = "BREAK"  # the marker in parse_prompt's result (compare with `is`)

# One alternative per syntax element, tried in this order (escapes first, then brackets, then text).
_TOKEN = re.compile(r"""
    \\[()\[\]\\]              # an escaped bracket or backslash
  | \\                        # a lone backslash (dropped, as A1111 does)
  | \(                        # open round
  | \[                        # open square
  | :([+-]?[.\d]+)\)          # ":weight)" closing a round bracket (no spaces, as in A1111)
  | \)                        # close round
  | \]                        # close square
  | [^\\()\[\]:]+             # plain text
  | :                         # a colon that closes nothing
""", re.X)
_BREAK_WORD = re.compile(r"\s*\bBREAK\b\s*")


class PromptSyntaxError(ValueError):
    """A prompt the parser cannot read (only a malformed `(text:weight)` number gets here)."""


def parse_prompt(text: str) -> list:
    """(text, weight) pairs and BREAK markers, in prompt order (see the module docstring)."""
    pieces: list = []  # [text, weight] lists while building, BREAK markers between them
    open_round: list[int] = []
    open_square: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece is not BREAK:
                piece[1] *= factor

    for match in _TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token == "(":
            open_round.append(len(pieces))
        elif token == "[":
            open_square.append(len(pieces))
        elif weight is not None and open_round:
            scale_from(open_round.pop(), _number(weight))
        elif token == ")" and open_round:
            scale_from(open_round.pop(), ROUND_MULTIPLIER)
        elif token == "]" and open_square:
            scale_from(open_square.pop(), SQUARE_MULTIPLIER)
        else:
            for k, part in enumerate(_BREAK_WORD.split(token)):
                if k:
                    pieces.append(BREAK)
                pieces.append([part, 1.0])
    for start in open_round:
        scale_from(start, ROUND_MULTIPLIER)
    for start in open_square:
        scale_from(start, SQUARE_MULTIPLIER)
    return _merged(pieces) or [("", 1.0)]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PromptSyntaxError(f"{text!r} in '(text:{text})' is not a number") from None


def _merged(pieces: list) -> list:
    """Neighbouring pieces with the same weight joined into one (BREAK markers stay between them)."""
    out: list = []
    for piece in pieces:
        if piece is not BREAK and out and out[-1] is not BREAK and out[-1][1] == piece[1]:
            out[-1] = (out[-1][0] + piece[0], piece[1])
        else:
            out.append(piece if piece is BREAK else (piece[0], piece[1]))
    return out


def has_weights(pieces: list) -> bool:
    return any(piece is not BREAK and piece[1] != 1.0 for piece in pieces)
