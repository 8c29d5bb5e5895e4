"""What strict JSON can carry, as Opus reads it: every place in a value that it cannot, and the fix.

The payload checks use it so that a value that could not be sent is refused before a job is
initiated, naming the input and the place inside it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_opus.exceptions import describe_value, show_value

#: How deep lists and dicts may nest inside one input: JSON encoders and decoders recurse, and
#: Python's stops near 1,000 levels, so a deeper value would fail after the job is initiated.
MAX_JSON_DEPTH = 100

# What to give instead of a value of these types, which JSON cannot carry.
_JSON_FIXES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((dt.date, dt.time, dt.timedelta), "give a string, e.g. its isoformat()"),
    ((set, frozenset), "give a list"),
    ((bytes, bytearray, memoryview), "give a string (decode it)"),
    (numbers.Number, "give an int or a float, or a string to keep every digit"),
    (Mapping, "give a dict"),
)
_ANY_JSON = "give a string, number, bool, None, list or dict"
_KEY_NOT_JSON = "is not a string, and JSON keys are: give the key as a string"


def not_json(value: Any, where: str = "", inside: tuple[int, ...] = ()) -> Iterator[str]:
    """
    Yield each place in ``value`` that strict JSON cannot carry, as ``"[key][index]: why: the fix"``.

    Strict as Opus reads it: no NaN or infinity, no number beyond a double, string keys only.

    :param value: a value as it is sent.
    :param where: the place of ``value`` in the input, as ``[key][index]``.
    :param inside: ids of the lists and dicts ``value`` is in, to find one that contains itself.
    """
    if isinstance(value, (dict, list, tuple)):
        if id(value) in inside:
            yield f"{where}: contains the value it is in, which JSON cannot: give a copy without the loop"
        elif len(inside) == MAX_JSON_DEPTH:
            yield f"{where}: nested more than {MAX_JSON_DEPTH} levels deep: flatten it"
        elif isinstance(value, dict):
            inside = (*inside, id(value))
            for key, item in value.items():
                if isinstance(key, str) and _plain_json(item):
                    continue
                place = f"{where}[{show_value(key)}]"
                if isinstance(key, str):
                    yield from not_json(item, place, inside)
                else:
                    yield f"{place}: the key {describe_value(key)} {_KEY_NOT_JSON}"
        else:
            inside = (*inside, id(value))
            for index, item in enumerate(value):
                if not _plain_json(item):
                    yield from not_json(item, f"{where}[{index}]", inside)
    elif isinstance(value, float) and not math.isfinite(value):
        yield f"{where}: {describe_value(value)} is not a JSON number: give a finite number or None"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        # Not its repr: Python refuses to print an int of more than 4,300 digits.
        digits = int(value.bit_length() * math.log10(2)) + 1
        yield (
            f"{where}: int of about {digits} digits is too large for a JSON number: "
            "give a number between -1.8e308 and 1.8e308, or a string"
        )
    elif not isinstance(value, (str, int, float)) and value is not None:
        fix = next((fix for kinds, fix in _JSON_FIXES if isinstance(value, kinds)), _ANY_JSON)
        yield f"{where}: {describe_value(value)} is not JSON: {fix}"


def json_problem(name: str, value: Any) -> str | None:
    """
    Return the problem of the first place in ``value`` that JSON cannot carry, and how many more there are.

    :param name: the input, as messages name it (``'Invoice'``).
    :param value: the input's value as it is sent.
    :return: e.g. ``"'Invoice'[0]: nan is not a JSON number: ... (and 2 more places in 'Invoice')"``,
        or None when the whole value is JSON.
    """
    places = list(not_json(value))
    if not places:
        return None
    more = f" (and {len(places) - 1} more places in {name})" if len(places) > 1 else ""
    return f"{name}{places[0]}{more}"


def _plain_json(value: Any) -> bool:
    """Tell at a glance that a value is JSON as it is: a string, bool, None, or a float or small int (most items)."""
    kind = type(value)
    return kind is str or kind is bool or value is None or (kind in (int, float) and -1e308 < value < 1e308)
