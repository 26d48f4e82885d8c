"""Checks of the settings a visitor or an API client sends (numbers, choices, names), before any work is done.

Each check returns the clean value or raises :class:`SettingError`: one line that names the setting and says what
it must be, e.g. ``row must be a whole number from 0 to 27, not NaN``. The value is shown with :func:`shown`
(``ascii()``, truncated), so a message is always short, valid UTF-8 (a lone surrogate or a NUL is never echoed as is).
No gradio here: the app's input components (:mod:`cnndemo.app.setting_inputs`) turn the error into ``gr.Error``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

SHOWN_CHARS = 40  # how much of a bad value a message shows
NAME_CHARS = 200  # the longest name (layer, module, target) a setting takes
EXACT = 2.0 ** 53  # beyond this a float no longer holds every whole number: no setting is anywhere near it
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_SPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and line breaks allowed
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class SettingError(ValueError):
    """A bad setting; the message (one line, at most 300 characters) names it and says what it must be."""


def shown(value: Any) -> str:
    """``value`` as a message shows it: ASCII only, at most about :data:`SHOWN_CHARS` characters."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 15:
        try:
            return f"{float(value):.3g}"
        except OverflowError:  # beyond a float: its size is enough (str() of it may even be refused)
            return f"a {value.bit_length() * 0.30103:.0f}-digit number"
    text = ascii(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo:g} to {hi:g}"
    if lo is not None:
        return f" of at least {lo:g}"
    return "" if hi is None else f" of at most {hi:g}"


def number(name: str, value: Any, lo: float | None = None, hi: float | None = None, *, whole: bool = False,
           above: bool = False) -> float | int:
    """``value`` as a finite number in ``[lo, hi]`` (``(lo, hi]`` when ``above``), an ``int`` when ``whole``.
    Text, None, booleans, NaN, infinities, fractions (when ``whole``) and out-of-range values are refused."""
    kind = "a whole number" if whole else "a number"
    if above and lo is not None:
        what = f"{kind} above {lo:g}" + ("" if hi is None else f" and at most {hi:g}")
    else:
        what = kind + _bounds(lo, hi)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SettingError(f"{name} must be {what}, not {shown(value)}.")
    try:
        x = float(value)
    except (ValueError, OverflowError):
        raise SettingError(f"{name} must be {what}, not {shown(value)}.") from None
    if not math.isfinite(x) or abs(x) > EXACT or (whole and x != int(x)):
        raise SettingError(f"{name} must be {what}, not {shown(value if isinstance(value, str) else x)}.")
    low = lo is not None and (x <= lo if above else x < lo)
    if low or (hi is not None and x > hi):
        raise SettingError(f"{name} must be {what}, not {shown(x if not whole else int(x))}.")
    return int(x) if whole else x


def whole(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> int:
    """``value`` as a whole number in ``[lo, hi]`` (2.0 is 2; 2.5 is refused)."""
    return number(name, value, lo, hi, whole=True)


def text(name: str, value: Any, max_chars: int | None = NAME_CHARS, empty: bool = True, lines: bool = False) -> str:
    """``value`` as plain text: a ``str`` (None is ``""``) with no lone surrogate, no control character (NUL
    included; tabs and line breaks are allowed with ``lines``), at most ``max_chars`` characters, and not empty
    unless ``empty``."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SettingError(f"{name} must be text, not {shown(value)}.")
    if _SURROGATE.search(value):
        raise SettingError(f"{name} is not valid text (a lone surrogate, not valid UTF-8): {shown(value)}.")
    if (_CONTROL_BUT_SPACE if lines else _CONTROL).search(value):
        raise SettingError(f"{name} must not contain control characters such as NUL: {shown(value)}.")
    if max_chars is not None and len(value) > max_chars:
        raise SettingError(f"{name} is too long ({len(value):,} characters; at most {max_chars}).")
    if not empty and not value.strip():
        raise SettingError(f"{name} is empty.")
    return value


def choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared as Python compares them: 20.0 is 20), else a message that
    names the setting and lists the choices."""
    options = list(choices)
    try:
        if value in options and not isinstance(value, bool):
            return options[options.index(value)]
    except TypeError:  # an unhashable or incomparable value is simply not a choice
        pass
    listed = ", ".join(str(o) for o in options)
    if value is None or value == "":
        raise SettingError(f"No {name} given: choose one of {listed}.")
    raise SettingError(f"Unknown {name} {shown(value)}: choose one of {listed}.")
