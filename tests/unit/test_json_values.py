"""json_values.py: every place in a value that strict JSON cannot carry, named with its fix."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from airflow_provider_opus.json_values import MAX_JSON_DEPTH, json_problem, not_json


def nested_lists(levels: int) -> list:
    """``levels`` lists, each the only item of the one around it: ``[[[]]]`` is 3."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text",
        0,
        -2.5,
        True,
        [],
        {"a": [1, 2.5, "s", None, False, {"b": []}], "c": {"d": "e"}},
        10**300,  # large, but a double still holds it
        nested_lists(MAX_JSON_DEPTH),
    ],
)
def test_a_value_json_carries_has_no_problem(value):
    assert list(not_json(value)) == []
    assert json_problem("'Metadata'", value) is None
    json.dumps(value, allow_nan=False)  # what the check promises: it is sent as it is


def test_the_first_place_is_named_with_how_many_more_there_are():
    value = {"when": [1, dt.date(2025, 1, 2), float("nan")], 7: "x"}
    assert list(not_json(value)) == [
        "['when'][1]: date datetime.date(2025, 1, 2) is not JSON: give a string, e.g. its isoformat()",
        "['when'][2]: float nan is not a JSON number: give a finite number or None",
        "[7]: the key int 7 is not a string, and JSON keys are: give the key as a string",
    ]
    assert json_problem("'Metadata'", value) == (
        "'Metadata'['when'][1]: date datetime.date(2025, 1, 2) is not JSON: give a string, e.g. its isoformat() "
        "(and 2 more places in 'Metadata')"
    )


def test_one_place_has_no_count_of_more():
    assert json_problem("'Threshold'", float("nan")) == (
        "'Threshold': float nan is not a JSON number: give a finite number or None"
    )


@pytest.mark.parametrize("infinite", [float("inf"), float("-inf")])
def test_infinity_is_not_a_json_number(infinite):
    assert json_problem("'X'", {"x": infinite}) == (
        f"'X'['x']: float {infinite} is not a JSON number: give a finite number or None"
    )


def test_a_value_that_contains_itself_is_a_loop_not_a_recursion_error():
    listed: list = [1]
    listed.append(listed)
    mapped: dict = {}
    mapped["self"] = mapped
    loop = ": contains the value it is in, which JSON cannot: give a copy without the loop"
    assert json_problem("'L'", listed) == f"'L'[1]{loop}"
    assert json_problem("'D'", mapped) == f"'D'['self']{loop}"


def test_the_same_list_twice_is_no_loop():
    shared = [1, 2]
    assert json_problem("'X'", [shared, {"again": shared}]) is None


def test_more_than_the_deepest_nesting_is_refused_with_its_place():
    assert MAX_JSON_DEPTH == 100
    problem = json_problem("'Deep'", nested_lists(MAX_JSON_DEPTH + 1))
    assert problem == "'Deep'" + "[0]" * MAX_JSON_DEPTH + ": nested more than 100 levels deep: flatten it"


@pytest.mark.parametrize(
    ("key", "place", "shown"),
    [
        (1, "1", "int 1"),
        (None, "None", "NoneType None"),
        ((1, 2), "(1, 2)", "tuple (1, 2)"),
        (b"k", "b'k'", "bytes b'k'"),
    ],
)
def test_a_key_that_is_not_a_string_is_named(key, place, shown):
    assert json_problem("'Metadata'", {"fine": 1, key: "value"}) == (
        f"'Metadata'[{place}]: the key {shown} is not a string, and JSON keys are: give the key as a string"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1, 2}, "set {1, 2} is not JSON: give a list"),
        (b"x", "bytes b'x' is not JSON: give a string (decode it)"),
        (Decimal("1.5"), "Decimal Decimal('1.5') is not JSON: give an int or a float, or a string to keep every digit"),
        (dt.timedelta(seconds=5), "timedelta datetime.timedelta(seconds=5) is not JSON: give a string, e.g. its "),
        (object, "type <class 'object'> is not JSON: give a string, number, bool, None, list or dict"),
        (10**400, "int of about 401 digits is too large for a JSON number: give a number between -1.8e308"),
    ],
)
def test_each_kind_json_cannot_carry_gets_its_own_fix(value, problem):
    assert json_problem("'X'", value).startswith(f"'X': {problem}")
