"""How people describe a shapes scene beyond the caption grammar (world.caption): other word orders and
frames, "in/at/on the", "over/on/against a ... background", "with a", "coloured/colored", British and American
spellings, synonyms, commas or none, an article or none, capitals.

Sentence frames are split in two: `TRAINING_TEMPLATES` teach the text encoder, `HELD_OUT_TEMPLATES` are never
trained on and measure whether it understood rather than memorised. Both draw on the same vocabulary
(`WORDS`); a frame is text with slots ({shape}, {size}, {color}, {pos}, {bg}, and the small words {a},
{prep}, {bgprep}, {colored}, {colour}) and optional parts "[x:...]" kept only when attribute x (s size,
c colour, p position, b background) is mentioned.
"""
from __future__ import annotations

import random
import re

from .world import ATTRIBUTES, Scene

WORDS = {  # every way a value may be said (the first is the grammar's word)
    "small": ("small", "tiny", "little"),
    "large": ("large", "big", "huge"),
    "purple": ("purple", "violet"),
    "gray": ("gray", "grey"),
}
_SIDE = {"top": ("top", "upper"), "bottom": ("bottom", "lower"), "left": ("left",), "right": ("right",)}
_SINGLE = {
    "center": ("center", "centre", "middle"),
    "top": ("top", "top middle", "upper middle", "top center", "top centre"),
    "bottom": ("bottom", "bottom middle", "lower middle", "bottom center", "bottom centre"),
    "left": ("left", "left side", "middle left", "left middle"),
    "right": ("right", "right side", "middle right", "right middle"),
}

TRAINING_TEMPLATES = (
    "{a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}][b: {bgprep} {a} {bg} background]",
    "{a} [c:{color} ]{shape}[s:, {size}][p:, {prep} the {pos}][b:, {bg} background]",
    "{a} [s:{size} ]{shape}[c: {colored} {color}][p: {prep} the {pos}][b: on {bg}]",
    "[p:{prep} the {pos}: ]{a} [s:{size} ][c:{color} ]{shape}[b: on {a} {bg} background]",
    "{a} [s:{size} ][c:{color}-{colored} ]{shape}[b: against {a} {bg} background][p:, {pos}]",
    "[b:{bg} background, ]{a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}]",
    "a picture of {a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}][b: on {a} {bg} background]",
    "{a} [c:{color} ]{shape}[s: that is {size}][p: {prep} the {pos}][b: with {a} {bg} background]",
    "[s:{size} ][c:{color} ]{shape}[p: {pos}][b: {bg} background]",
    "{shape}[c:, {color}][s:, {size}][p:, {pos}][b:, background {bg}]",
    "{a} [s:{size} ]{shape}[c: in {color}][p: {prep} the {pos}][b: over {a} {bg} background]",
    "[b:on {a} {bg} background, ]{a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}]",
    "[p:{prep} the {pos} ]{a} [s:{size} ][c:{color} ]{shape}[b: against {a} {bg} background]",
    "[b:{a} {bg} background and ]{a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}]",
    "draw {a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}][b: on {a} {bg} background]",
    "there is {a} [s:{size} ][c:{color} ]{shape}[p: {prep} the {pos}][b: on {a} {bg} background]",
    "{a} [s:{size} ]{shape}[c: whose {colour} is {color}][b: on {a} {bg} background][p: {prep} the {pos}]",
    "[b:background {bg}, ]{shape}[c: {color}][s: {size}][p: {pos}]",
)
HELD_OUT_TEMPLATES = (
    "{a} [c:{color} ]{shape}[p: at the {pos}][s:, {size}][b:, over {a} {bg} background]",
    "[b:{bg} background with ]{a} [s:{size} ][c:{color} ]{shape}[p: in the {pos}]",
    "[p:{prep} the {pos}, ]there is {a} [s:{size} ][c:{color} ]{shape}[b: against {a} {bg} background]",
    "[b:{a} {bg} background and ]{a} [c:{color} ]{shape}[s: that is {size}][p:, {pos}]",
    "[s:{size} ]{shape}[c:, {color}][b:, {bg} background][p:, {prep} the {pos}]",
    "draw {a} [c:{color} ]{shape}[p: {prep} the {pos}][b: over {a} {bg} background][s:, {size}]",
    "a picture of {a} [s:{size} ]{shape}[c: in {color}][b: with {a} {bg} background][p: {prep} the {pos}]",
    "{a} [s:{size} ]{shape}[c: {colored} {color}][b: against {bg}][p:, {pos}]",
)
_OPTIONAL = re.compile(r"\[([scpb]):([^\]]*)\]")
_KEY = {"s": "size", "c": "color", "p": "position", "b": "background"}


def _say(value: str, rng: random.Random) -> str:
    return rng.choice(WORDS.get(value, (value,)))


def position_phrase(position: str, rng: random.Random) -> str:
    """A way to say a position: "upper left", "top-left corner", "centre", "middle right" ..."""
    if position in _SINGLE:
        return rng.choice(_SINGLE[position])
    vertical, horizontal = position.split()
    text = rng.choice(_SIDE[vertical]) + rng.choice((" ", " ", "-")) + horizontal
    return text + rng.choice(("", "", " corner"))


def _surface(text: str, rng: random.Random) -> str:
    """Commas or none, capitals or none, a full stop or none; spaces tidied."""
    if rng.random() < 0.3:
        text = text.replace(",", "").replace(":", "")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,:])", r"\1", text)
    case = rng.random()
    if case < 0.2:
        text = text[:1].upper() + text[1:]
    elif case < 0.3:
        text = text.title()
    elif case < 0.35:
        text = text.upper()
    if rng.random() < 0.15:
        text += "."
    return text


def _articles(text: str, rng: random.Random, style: str) -> str:
    """Each {a}: "a"/"an" as the next word wants, "the", or nothing, per `style` for the whole text."""
    def article(match: re.Match) -> str:
        following = match.group(1)
        if style == "none":
            return following
        if style == "the" and rng.random() < 0.5:
            return "the " + following
        return ("an " if following[:1] in "aeiou" else "a ") + following
    return re.sub(r"\{a\} +([a-z])", article, text)


def describe(scene: Scene, template: str, rng: random.Random, keep: frozenset[str] | None = None) -> str:
    """`scene` said through `template`, mentioning only the attributes in `keep` (all when None)."""
    keep = frozenset(ATTRIBUTES) if keep is None else keep
    text = _OPTIONAL.sub(lambda m: m.group(2) if _KEY[m.group(1)] in keep else "", template)
    values = {
        "shape": scene.shape if "shape" in keep else "shape",
        "size": _say(scene.size, rng), "color": _say(scene.color, rng), "bg": _say(scene.background, rng),
        "pos": position_phrase(scene.position, rng),
        "prep": rng.choice(("in", "at", "on")), "bgprep": rng.choice(("on", "over", "against", "with")),
        "colored": rng.choice(("coloured", "colored")), "colour": rng.choice(("colour", "color")),
    }
    text = re.sub(r"\{(shape|size|color|bg|pos|prep|bgprep|colored|colour)\}", lambda m: values[m.group(1)], text)
    text = re.sub(r"\s+", " ", text).strip()
    text = _articles(text, rng, rng.choice(("a", "a", "none", "the")))
    return _surface(text.replace("{a} ", "").replace("{a}", ""), rng)


def random_description(scene: Scene, rng: random.Random, templates=TRAINING_TEMPLATES,
                       keep: frozenset[str] | None = None) -> str:
    return describe(scene, rng.choice(templates), rng, keep)


def phrasing_prompts(count: int, templates=HELD_OUT_TEMPLATES, seed: int = 4321) -> list[tuple[Scene, str]]:
    """`count` held-out scenes (never in training), each fully described through one of `templates` in turn."""
    from .world import all_scenes, is_held_out

    rng = random.Random(seed)
    held_out = [s for s in all_scenes() if is_held_out(s)]
    return [(scene, describe(scene, templates[k % len(templates)], rng))
            for k, scene in enumerate(rng.sample(held_out, count))]


# Training also composes new frames from the training templates' own pieces, in random orders, and keeps only
# texts no held-out template can say: the held-out frames stay unseen, the pieces' order is learned, not the
# eighteen frames.
_NOUN_PART = {"s": ("{size}", "that is {size}"),
              "c": ("{colored} {color}", "in {color}", "whose {colour} is {color}", "{color}", "{color}-{colored}")}
_PLACE_PART = ("{prep} the {pos}", "{pos}")
_BACKGROUND_PART = ("{bgprep} {a} {bg} background", "{bg} background", "against {bg}", "on {bg}", "background {bg}")
_LEADS = ("", "", "", "draw ", "a picture of ", "there is ")


def composed_template(rng: random.Random) -> str:
    """A frame in the training templates' pieces and words: the shape with some adjectives before it, the rest
    (size, colour, place, background) after it or before it, in a random order, with commas or "and"."""
    before = [k for k in ("s", "c") if rng.random() < 0.6]
    rng.shuffle(before)
    adjectives = "".join(f"[{k}:{{{'size' if k == 's' else 'color'}}} ]" for k in before)
    parts = [(k, rng.choice(_NOUN_PART[k])) for k in ("s", "c") if k not in before]
    parts += [("p", rng.choice(_PLACE_PART)), ("b", rng.choice(_BACKGROUND_PART))]
    rng.shuffle(parts)
    lead = [parts.pop(0) for _ in range(rng.choice((0, 0, 1, 1, 2))) if parts and parts[0][0] in "pb"]
    bare = [part for part in parts if part == ("c", "{color}")]  # a bare colour word only right after the shape
    parts = bare + [part for part in parts if part not in bare]
    joint = lambda: rng.choice((", ", " ", " and ")) if rng.random() < 0.8 else ", "  # noqa: E731
    text = "".join(f"[{k}:{piece}{rng.choice((', ', ' ', ': '))}]" for k, piece in lead)
    text += ("" if lead else rng.choice(_LEADS)) + "{a} " + adjectives + "{shape}"
    return text + "".join(f"[{k}:{joint() if k in 'sc' or rng.random() < 0.7 else ' '}{piece}]" for k, piece in parts)


_PLACES = "top|bottom|upper|lower|left|right|center|centre|middle|side|corner"


def template_pattern(template: str) -> re.Pattern:
    """Every text `template` can say through `describe` (lower case, commas, colons and a full stop left out),
    as a regex."""
    colours = "|".join(w for value in ("red", "orange", "yellow", "green", "blue", "purple", "white", "black",
                                       "gray") for w in WORDS.get(value, (value,)))
    word = {"shape": "circle|square|triangle|star|shape", "color": colours, "bg": colours,
            "size": "|".join(WORDS["small"] + WORDS["large"]), "pos": f"(?:{_PLACES})(?:[ -](?:{_PLACES}))*",
            "prep": "in|at|on", "bgprep": "on|over|against|with", "colored": "coloured|colored",
            "colour": "colour|color"}
    out = ""
    for match in re.finditer(r"\[[scpb]:([^\]]*)\]|\{(\w+)\}|([^\[{]+)", template):
        if match.group(1) is not None:
            out += "(?:" + template_pattern(match.group(1)).pattern.removeprefix("^").removesuffix("$") + ")?"
        elif match.group(2) == "a":
            out += r"(?:(?:a|an|the) )?"
        elif match.group(2):
            out += f"(?:{word[match.group(2)]})"
        else:
            out += re.escape(re.sub(r" *[,:.]", "", match.group(3)))
    return re.compile("^" + re.sub(r"(\\ )+", " *", out) + "$")


_HELD_OUT_PATTERNS: list[re.Pattern] = []


def said_by(text: str, templates) -> bool:
    """Whether one of `templates` can say `text` (capitals, commas, colons and a full stop aside)."""
    bare = re.sub(r" *[,:]", "", text.lower().rstrip("."))
    if templates is HELD_OUT_TEMPLATES:
        if not _HELD_OUT_PATTERNS:
            _HELD_OUT_PATTERNS.extend(template_pattern(t) for t in HELD_OUT_TEMPLATES)
        patterns = _HELD_OUT_PATTERNS
    else:
        patterns = [template_pattern(t) for t in templates]
    return any(p.match(bare) for p in patterns)


def training_description(scene: Scene, rng: random.Random, keep: frozenset[str] | None = None,
                         composed: float = 0.5) -> str:
    """A description to train on: through a training template, or (a `composed` share) a composed frame,
    drawn again while a held-out template could say it (held-out prompts name every attribute; texts saying
    fewer may coincide with any template's, as "a red circle" does)."""
    full = keep is None or len(keep) == len(ATTRIBUTES)
    while True:
        template = composed_template(rng) if rng.random() < composed else rng.choice(TRAINING_TEMPLATES)
        text = describe(scene, template, rng, keep)
        if not (full and said_by(text, HELD_OUT_TEMPLATES)):
            return text
