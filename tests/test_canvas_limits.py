"""The canvas payload's size bound holds whatever its JSON type, and no message of cnndemo.data.canvas is long.

Issue 18: a canvas value sent as a JSON object (not a string) skipped the size check, and one error message
echoed the payload (550,060 characters). Every payload is measured before anything else is looked at, and
every message is one short line that never repeats what was sent.
"""

from __future__ import annotations

import json
import time

import pytest

from cnndemo.data.canvas import MAX_PAYLOAD_CHARS, decode_canvas, parse_payload

MAX_MESSAGE_CHARS = 300  # issue 18: every error message at most 300 characters

HEADER = {"v": 1, "seq": 1, "final": True, "w": 112, "h": 112, "x": 0, "y": 0, "cw": 0, "ch": 0, "alpha": ""}


def _message(payload) -> str:
    with pytest.raises(ValueError) as err:
        decode_canvas(payload)
    return str(err.value)


@pytest.mark.parametrize("payload", [
    {**HEADER, "w": "x" * 550_000},  # the case: the message echoed the whole value
    {**HEADER, "alpha": "A" * (MAX_PAYLOAD_CHARS + 1)},
    {**HEADER, "seq": [1] * 100_000},
    [HEADER] * 20_000,
    ["x" * 1000] * 200,
    {"k" * 200_000: 1},
    {f"key{i}": i for i in range(20_000)},
    [[[[["x" * 50_000]]]]] * 3,
], ids=["w_string", "alpha_string", "seq_list", "list_of_objects", "list_of_strings", "long_key", "many_keys",
        "nested"])
def test_oversize_payload_of_any_json_type_is_too_large(payload):
    assert len(json.dumps(payload)) > MAX_PAYLOAD_CHARS
    message = _message(payload)
    assert "too large" in message and len(message) <= MAX_MESSAGE_CHARS, message[:400]


def test_the_size_is_measured_without_walking_the_whole_payload():
    huge = ["x"] * 5_000_000  # ~25 MB as JSON: refused after looking at about MAX_PAYLOAD_CHARS of it
    t0 = time.perf_counter()
    assert "too large" in _message(huge)
    assert time.perf_counter() - t0 < 0.2


@pytest.mark.parametrize("payload", [
    {**HEADER, "w": "x" * 5000},
    {**HEADER, "seq": {"a": "b" * 5000}},
    {**HEADER, "alpha": "A" * 5000},
    {**HEADER, **{f"extra_{'k' * 100}_{i}": 1 for i in range(60)}},
    json.dumps({**HEADER, "w": "x" * 5000}),
    "{" + "x" * 5000,
    b"\xff" * 5000,
    ["y" * 5000],
    "y" * 5000,
], ids=["w_string", "seq_object", "alpha_mismatch", "unknown_keys", "string_w", "bad_json", "bad_utf8", "list",
        "not_json"])
def test_every_message_is_short_and_never_echoes_the_payload(payload):
    message = _message(payload)
    assert len(message) <= MAX_MESSAGE_CHARS, message[:400]
    assert "xxxxxxxxxxxxxxxxxxxx" not in message and "yyyyyyyyyyyyyyyyyy" not in message
    assert "\n" not in message


def test_a_payload_within_the_limit_still_parses_as_a_dict_or_a_string():
    assert parse_payload(HEADER)["w"] == 112
    assert parse_payload(json.dumps(HEADER))["seq"] == 1
