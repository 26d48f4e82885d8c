"""The settings checks (cnndemo.settings) and the input components that run them (cnndemo.app.setting_inputs):
every bad value is one line of at most 300 characters, valid UTF-8, that names the setting."""

from __future__ import annotations

import math

import pytest

from cnndemo import settings
from cnndemo.finetune.spec import FineTuneSpec
from cnndemo.labs.gradient_flow import LabSpec
from cnndemo.settings import SettingError, choice, number, shown, text, whole

BAD_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -1, "two", "", None, True, [3], "\ud800", "nan"]


def message(call, *args, **kwargs) -> str:
    with pytest.raises(SettingError) as info:
        call(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and 0 < len(msg) <= 300
    msg.encode("utf-8")  # a lone surrogate would raise here
    return msg


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_whole_refuses_bad_values_naming_the_setting(bad):
    msg = message(whole, "row", bad, 0, 27)
    assert msg.startswith("row must be a whole number from 0 to 27, not ")


def test_whole_messages_show_the_value_readably():
    assert message(whole, "row", math.nan, 0, 27) == "row must be a whole number from 0 to 27, not NaN."
    assert message(whole, "row", -math.inf) == "row must be a whole number, not -Infinity."
    assert message(whole, "col", 1e308, 0) == "col must be a whole number of at least 0, not 1e+308."
    assert message(whole, "page", 2.5, 1) == "page must be a whole number of at least 1, not 2.5."
    assert message(whole, "page", 10 ** 400) == "page must be a whole number, not a 400-digit number."
    assert message(whole, "page", 10 ** 20) == "page must be a whole number, not 1e+20."


def test_whole_accepts_whole_floats_and_strings_of_numbers():
    assert whole("epochs", 2.0, 1, 10) == 2 and isinstance(whole("epochs", 2.0, 1, 10), int)
    assert whole("epochs", "3", 1, 10) == 3
    assert whole("row", 0) == 0


def test_number_bounds_and_open_lower_bound():
    assert number("lr", 0.5, 0, 1, above=True) == 0.5
    assert message(number, "lr", 0, 0, 1, above=True) == "lr must be a number above 0 and at most 1, not 0."
    assert message(number, "lr", -1, 1e-5, 1) == "lr must be a number from 1e-05 to 1, not -1."
    assert message(number, "lr", "1e999", 1e-5, 1) == "lr must be a number from 1e-05 to 1, not '1e999'."


def test_text_refuses_surrogates_nul_controls_and_long_names():
    assert "lone surrogate" in message(text, "layer", "\ud800")
    assert message(text, "layer", "a\x00b") == "layer must not contain control characters such as NUL: 'a\\x00b'."
    assert "too long" in message(text, "layer", "x" * 10_000)
    assert message(text, "layer", 5) == "layer must be text, not 5."
    assert message(text, "arch", " ", empty=False) == "arch is empty."
    assert text("layer", None) == "" and text("layer", "features.block1") == "features.block1"
    assert text("labels", '[\n"7"\n]', max_chars=None, lines=True) == '[\n"7"\n]'
    assert "control characters" in message(text, "labels", "[\x00]", max_chars=None, lines=True)


def test_choice_names_the_setting_and_the_choices():
    archs = ["vgg11", "googlenet"]
    assert choice("arch", "vgg11", archs) == "vgg11"
    assert choice("depth", 20.0, [8, 20]) == 20
    assert message(choice, "arch", "", archs) == "No arch given: choose one of vgg11, googlenet."
    assert message(choice, "arch", "alexnet", archs) == "Unknown arch 'alexnet': choose one of vgg11, googlenet."
    assert message(choice, "arch", "\ud800", archs) == "Unknown arch '\\ud800': choose one of vgg11, googlenet."
    assert message(choice, "depth", math.nan, [8, 20]) == "Unknown depth NaN: choose one of 8, 20."
    assert "Unknown dataset" in message(choice, "dataset", {"a": 1}, ["mnist"])
    assert "Unknown depth" in message(choice, "depth", True, [1, 8])  # True == 1, but a boolean is no depth


def test_shown_is_ascii_and_short():
    assert shown("é" * 100).isascii() and len(shown("é" * 100)) <= settings.SHOWN_CHARS + 3
    assert shown(math.nan) == "NaN" and shown(-math.inf) == "-Infinity" and shown(2.5) == "2.5"


def test_finetune_and_lab_specs_use_the_same_checks():
    assert str(pytest.raises(ValueError, FineTuneSpec(epochs=math.nan).validate).value) == \
        "epochs must be a whole number from 1 to 10, not NaN."
    assert "epochs must be a whole number" in str(pytest.raises(ValueError, FineTuneSpec(epochs=2.5).validate).value)
    assert "No start given" in str(pytest.raises(ValueError, FineTuneSpec(start="").validate).value)
    assert FineTuneSpec(epochs=3.0).validate().epochs == 3
    assert str(pytest.raises(ValueError, LabSpec(width=math.nan).validate).value) == \
        "width must be a whole number from 4 to 32, not NaN."
    assert "lr must be a number above 0" in str(pytest.raises(ValueError, LabSpec(lr=math.inf).validate).value)
    assert "depth must be an even number" in str(pytest.raises(ValueError, LabSpec(depth=21).validate).value)
    assert LabSpec(depth=20.0, steps=40.0).validate().depth == 20


def refused(component, payload) -> str:
    """The one line ``component.preprocess(payload)`` raises as ``gr.Error``."""
    import gradio as gr

    with pytest.raises(gr.Error) as info:
        component.preprocess(payload)
    return info.value.message


def test_components_refuse_before_gradio_converts():
    pytest.importorskip("gradio")
    from cnndemo.app.setting_inputs import Choice, RadioChoice, SettingNumber, SettingSlider, SettingText, setting

    row = SettingNumber(0, precision=0, label="row")
    assert row.preprocess(3.0) == 3 and row.preprocess(None) is None
    assert refused(row, math.nan) == "row must be a whole number, not NaN."
    assert refused(row, 2.5) == "row must be a whole number, not 2.5."  # gr.Number(precision=0) would round it
    width = setting(SettingSlider, "width", 4, 32, value=8, step=1, label="Width (channels per layer)")
    assert width.preprocess(8) == 8
    assert refused(width, math.nan) == "width must be a whole number from 4 to 32, not NaN."  # gr.Slider passes NaN
    lr = setting(SettingNumber, "lr", value=0.01, minimum=1e-4, maximum=1.0, label="Learning rate (SGD)")
    assert refused(lr, math.inf) == "lr must be a number from 0.0001 to 1, not Infinity."
    arch = setting(Choice, "arch", [("VGG", "vgg11"), ("ResNet", "resnet18")], value="vgg11", label="Network")
    assert arch.preprocess("resnet18") == "resnet18"
    assert refused(arch, "\ud800") == "Unknown arch '\\ud800': choose one of vgg11, resnet18."
    depth = setting(RadioChoice, "depth", [8, 20], value=20, label="Depth")
    assert refused(depth, -math.inf) == "Unknown depth -Infinity: choose one of 8, 20."
    layer = SettingText(label="layer")
    assert layer.preprocess("features.block1") == "features.block1"
    assert refused(layer, "a\x00b") == "layer must not contain control characters such as NUL: 'a\\x00b'."
    assert arch.get_block_name() == "dropdown" and row.get_block_name() == "number"  # Gradio's own front ends
