"""Input components that check a setting before Gradio converts it, and refuse a bad one with one line naming it.

Gradio's own components answer a bad value with a message that names no setting ("Value: ... is not in the list of
choices"), a multi-line "Could not preprocess input component" (NaN in a ``gr.Number``), or echo a lone surrogate,
which then cannot be sent (the browser's stream breaks on "str is not valid UTF-8"); a ``gr.Slider`` passes NaN on.
These subclasses run :mod:`cnndemo.settings`' checks in ``preprocess`` (public API) and raise ``gr.Error``.

Build one with :func:`setting`: ``setting(Choice, "arch", choices, value=..., label="Network")``; ``"arch"`` is the
name the message uses (the API's argument name), the rest goes to the Gradio component as it is.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from cnndemo import settings
from cnndemo.app.inputs import GradioFrontend


def checked(check, *args, **kwargs) -> Any:
    """``check(*args, **kwargs)``, with a :class:`~cnndemo.settings.SettingError` as ``gr.Error``."""
    try:
        return check(*args, **kwargs)
    except settings.SettingError as exc:
        raise gr.Error(str(exc)) from None


class Named(GradioFrontend):
    """Mixin: the setting's name in messages (``setting_name``, set by :func:`setting`; else the label)."""

    setting_name: str | None = None

    @property
    def setting(self) -> str:
        return self.setting_name or str(getattr(self, "label", None) or "value")


class _Choices(Named):
    def preprocess(self, payload):
        if payload is not None:
            payload = checked(settings.choice, self.setting, payload, [value for _, value in self.choices])
        return super().preprocess(payload)


class Choice(_Choices, gr.Dropdown):
    """A single-choice ``gr.Dropdown`` (no custom values) whose bad value names the setting."""

    FRONTEND = "dropdown"


class RadioChoice(_Choices, gr.Radio):
    """A ``gr.Radio`` whose bad value names the setting."""

    FRONTEND = "radio"


def _number(component: Any, payload: Any) -> int | float:
    """``payload`` checked against ``component``'s bounds: whole when its precision is 0 or its step and minimum
    are whole (a ``gr.Slider``'s)."""
    step = getattr(component, "step", None)
    lo = component.minimum
    whole = component.precision == 0 or (step is not None and float(step).is_integer()
                                         and (lo is None or float(lo).is_integer()))
    return settings.number(component.setting, payload, lo, component.maximum, whole=whole)


class SettingNumber(Named, gr.Number):
    """A ``gr.Number`` that refuses NaN, infinities, text, fractions (``precision=0``) and out-of-range values with
    one line naming the setting (Gradio's fails on NaN with a multi-line message, and rounds 2.5 to 2)."""

    FRONTEND = "number"

    def preprocess(self, payload):
        if payload is None:
            return None
        return super().preprocess(checked(_number, self, payload))


class SettingSlider(Named, gr.Slider):
    """A ``gr.Slider`` that refuses NaN (Gradio passes it on), infinities, text, fractions (a whole step) and
    out-of-range values with one line naming the setting."""

    FRONTEND = "slider"

    def preprocess(self, payload):
        return super().preprocess(checked(_number, self, payload))


class SettingText(Named, gr.Textbox):
    """A ``gr.Textbox`` for names (a layer, a module, a class): plain text of at most ``max_chars`` characters,
    no lone surrogate, no control character. :data:`FREE_TEXT` (``setting(..., **FREE_TEXT)``): any length, tabs
    and line breaks allowed (a JSON list)."""

    FRONTEND = "textbox"
    max_chars: int | None = settings.NAME_CHARS
    lines_allowed = False

    def preprocess(self, payload):
        value = checked(settings.text, self.setting, payload, self.max_chars, lines=self.lines_allowed)
        return super().preprocess(value)


FREE_TEXT = {"max_chars": None, "lines_allowed": True}


def setting(component_class: type, name: str, *args, max_chars: int | None | bool = False,
            lines_allowed: bool = False, **kwargs) -> Any:
    """``component_class(*args, **kwargs)`` (one of this module's classes) checking its value as the setting
    ``name``; for text, ``max_chars`` replaces the default length limit and ``lines_allowed`` allows line breaks."""
    component = component_class(*args, **kwargs)
    component.setting_name = name
    if max_chars is not False:
        component.max_chars = max_chars
    component.lines_allowed = lines_allowed
    return component
