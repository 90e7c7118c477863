"""lsa_edge._checks.check_number: one range/integer/finite/bool rule, worded for a flag, a config key or a
keyword argument of a Python call (lsa_edge._args.number/integer are that last wording)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lsa_edge import _args
from lsa_edge._checks import check_number
from lsa_edge.errors import ConfigError


def _message(value, name="batch", **kw) -> str:
    with pytest.raises(ConfigError) as info:
        check_number(value, name, **kw)
    return str(info.value)


def test_flag_wording_names_the_field_the_flag_the_value_and_the_hint():
    msg = _message(0, flag="--batch", lo=1, integer=True, hint="e.g. 256")
    assert msg == "batch (--batch) must be an integer ≥ 1, got 0; e.g. 256"
    # a wrong type also names the type received
    msg = _message("8", flag="--batch", lo=1, integer=True)
    assert msg == "batch (--batch) must be an integer ≥ 1, got '8' (str)"


def test_config_key_wording_names_the_key_alone():
    msg = _message(1.0, "dropout", lo=0, hi=1, hi_open=True)
    assert msg == "dropout must be a finite number ≥ 0 and < 1, got 1.0"


def test_keyword_argument_wording_names_the_call_and_what_is_accepted():
    msg = _message(0, "max_batch", call="Pipeline", lo=1, integer=True, accepted="an int ≥ 1")
    assert msg == "Pipeline(max_batch=...): got 0; accepted: an int ≥ 1."
    # without ``accepted`` the range in symbols stands in
    msg = _message(-1.0, "min_face_size", call="FaceDetector", lo=0)
    assert msg == "FaceDetector(min_face_size=...): got -1.0; accepted: a finite number ≥ 0."


@pytest.mark.parametrize(
    "value, integer, remedy",
    [
        ("3", True, "Convert text first, e.g. int(text)."),
        ("0.5", False, "Convert text first, e.g. float(text)."),
        (4.5, True, "Pass a whole number (e.g. 4)."),
        (math.nan, False, "NaN, infinity and numbers beyond a float are refused."),
        (10**400, False, "NaN, infinity and numbers beyond a float are refused."),
    ],
)
def test_keyword_argument_wording_adds_a_remedy(value, integer, remedy):
    msg = _message(value, "x", call="f", lo=1, integer=integer, accepted="a number ≥ 1")
    assert msg.startswith("f(x=...): got ") and msg.endswith(f"; accepted: a number ≥ 1. {remedy}"), msg


@pytest.mark.parametrize(
    "value",
    [True, False, "1", None, [1], math.nan, math.inf, -math.inf, np.float64(math.nan), 10**400],
)
@pytest.mark.parametrize("how", [{"flag": "--x"}, {}, {"call": "f", "accepted": "a number"}])
def test_the_same_values_are_refused_however_they_were_given(value, how):
    with pytest.raises(ConfigError):
        check_number(value, "x", **how)


@pytest.mark.parametrize("how", [{"flag": "--x"}, {}, {"call": "f", "accepted": "a number"}])
def test_the_same_bounds_hold_however_they_were_given(how):
    for ok in (0.25, 0.5, 63.9):
        assert check_number(ok, "x", lo=0, hi=64, lo_open=True, hi_open=True, **how) == ok
    for bad in (0, 64, -1, 1e9):
        with pytest.raises(ConfigError):
            check_number(bad, "x", lo=0, hi=64, lo_open=True, hi_open=True, **how)
    for bad in (1.0, 2.5, np.float32(1)):
        with pytest.raises(ConfigError):
            check_number(bad, "x", integer=True, **how)


def test_returns_the_value_as_int_or_float_and_none_when_optional():
    assert check_number(np.int64(3), "x", integer=True) == 3
    assert type(check_number(np.int64(3), "x", integer=True)) is int
    assert type(check_number(np.float32(0.5), "x")) is float
    assert check_number(None, "x", optional=True) is None
    with pytest.raises(ConfigError):
        check_number(None, "x")
    # an int too large for a float is still an int: compared exactly, not an OverflowError
    assert check_number(10**400, "x", integer=True, lo=1) == 10**400
    assert "≤ 4.29497e+09" in _message(10**400, "seed", flag="--seed", lo=0, hi=2**32 - 1, integer=True)


def test_the_api_helpers_are_check_number_worded_for_a_call():
    with pytest.raises(ConfigError) as api:
        _args.integer("Pipeline", "max_batch", 0, lo=1, accepted="an int ≥ 1")
    assert str(api.value) == _message(
        0, "max_batch", call="Pipeline", lo=1, integer=True, accepted="an int ≥ 1"
    )
    assert _args.number("Pipeline", "t", 1, lo=0, accepted="a number") == 1.0
    assert type(_args.number("Pipeline", "t", 1, lo=0, accepted="a number")) is float
