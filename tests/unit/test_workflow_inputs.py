"""workflow_inputs.py: one input of a workflow read from its schema entry, and one value checked for it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pendulum
import pytest

from airflow_provider_opus.workflow_inputs import WorkflowInput
from tests.unit.workflow_schema import SCHEMA, schema_entry

#: The inputs of the emulator's bundled default workflow, by display name.
INPUTS = {entry["display_name"]: WorkflowInput.from_schema_entry(name, entry) for name, entry in SCHEMA.items()}


def _sent(name: str, value) -> object:
    """The value sent to Opus for ``value`` given for the input ``name``; it must have no problem."""
    sent, problems = INPUTS[name].check(value)
    assert problems == []
    return sent


def _problems(name: str, value) -> list[str]:
    return INPUTS[name].check(value)[1]


def test_schema_entry_normalizes_allowed_types_and_reads_an_empty_list_as_no_restriction():
    entry = schema_entry("x", "X", "file", False, [".Pdf", " DOCX "])
    assert WorkflowInput.from_schema_entry("workflow_input_x", entry).allowed_file_types == {"pdf", "docx"}
    entry = schema_entry("x", "X", "file", False, [])
    assert WorkflowInput.from_schema_entry("workflow_input_x", entry).allowed_file_types is None


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("Customer Name", "", ""),
        ("Customer Name", "Zoë", "Zoë"),
        ("Threshold", 3, 3),
        ("Threshold", -0.5, -0.5),
        ("Priority", False, False),
        ("Reviewers", [], []),
        ("Reviewers", ("a", 1), ["a", 1]),
        ("Metadata", {}, {}),
        ("Metadata", {"nested": {"a": [1]}}, {"nested": {"a": [1]}}),
        ("Invoice", "https://files.opus.com/x.PDF", "https://files.opus.com/x.PDF"),
        ("Invoice", "HTTP://files.opus.com/x.jpeg", "HTTP://files.opus.com/x.jpeg"),
        ("Supporting Documents", ("https://h.test/a.csv",), ["https://h.test/a.csv"]),
    ],
)
def test_accepted_values(name, value, sent):
    assert _sent(name, value) == sent


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Customer Name", 5, "'Customer Name': expected a string, got int 5"),
        ("Customer Name", b"ACME", "'Customer Name': expected a string, got bytes b'ACME'"),
        ("Threshold", True, "'Threshold': expected a number, got bool True"),
        ("Threshold", "45.8", "'Threshold': expected a number, got '45.8'"),
        ("Threshold", float("nan"), "'Threshold': expected a number, got float nan"),
        ("Threshold", float("inf"), "'Threshold': expected a number, got float inf"),
        ("Priority", 1, "'Priority': expected a bool (True or False), got int 1"),
        ("Priority", "true", "'Priority': expected a bool (True or False), got 'true'"),
        ("Reviewers", "User1", "'Reviewers': expected a list, got 'User1'"),
        ("Reviewers", {"a"}, "'Reviewers': expected a list, got set {'a'}"),
        ("Metadata", [("a", 1)], "'Metadata': expected a dict, got list [('a', 1)]"),
        ("Due Date", 20251109, "'Due Date': expected a date (YYYY-MM-DD), got int 20251109"),
        ("Invoice", 3, "'Invoice': expected a file URL (http/https) or local path, got int 3"),
        ("Invoice", "", "'Invoice': expected a file URL (http/https) or local path, got ''"),
        (
            "Invoice",
            ["https://h.test/a.pdf"],
            "'Invoice': expected a file URL (http/https) or local path, got list ['https://h.test/a.pdf']",
        ),
        (
            "Supporting Documents",
            "https://h.test/a.pdf",
            "'Supporting Documents': expected a list of file URLs or local paths, got 'https://h.test/a.pdf'",
        ),
        (
            "Supporting Documents",
            ["https://h.test/a.pdf", None],
            "'Supporting Documents'[1]: expected a file URL (http/https) or local path, got NoneType None",
        ),
    ],
)
def test_rejected_values(name, value, problem):
    assert _problems(name, value) == [problem]


@pytest.mark.parametrize(
    "value",
    [
        dt.date(2025, 11, 9),
        dt.datetime(2025, 11, 9, 23, 59),
        dt.datetime(2025, 11, 9, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        pendulum.date(2025, 11, 9),
        pendulum.datetime(2025, 11, 9, 8, tz="Europe/Berlin"),
        "2025-11-09",
        "2025-11-09T23:30",
        "2025-11-09T23:30:00",
        "2025-11-09T23:30:00.123456",
        "2025-11-09T23:30:00Z",
        "2025-11-09T23:30:00+02:00",
        "2025-11-09 23:30:00",
    ],
)
def test_dates_of_each_kind_are_sent_as_iso_dates(value):
    assert _sent("Due Date", value) == "2025-11-09"


@pytest.mark.parametrize(
    "value",
    [
        "tomorrow",
        "2025-02-30",
        "09/11/2025",
        "20251109",
        "2025-11-9",
        "2025-11-09T",
        "2025-11-09Tnoon",
        " 2025-11-09",
    ],
)
def test_bad_date_strings_are_rejected(value):
    assert _problems("Due Date", value) == [f"'Due Date': expected a date (YYYY-MM-DD), got {value!r}"]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "Invoice",
            "invoice.exe",
            "'Invoice': file type '.exe' is not allowed for this input (allowed: JPEG, JPG, PDF, PNG)",
        ),
        (
            "Invoice",
            "notes.docx",
            "'Invoice': file type '.docx' is not allowed for this input (allowed: JPEG, JPG, PDF, PNG)",
        ),
        (
            "Invoice",
            "https://h.test/invoice.docx?sig=a.pdf",
            "'Invoice': file type '.docx' is not allowed for this input (allowed: JPEG, JPG, PDF, PNG)",
        ),
        (
            "Supporting Documents",
            ["ok.pdf", "photo.jpg"],
            "'Supporting Documents'[1]: file type '.jpg' is not allowed for this input "
            "(allowed: CSV, DOCX, PDF, PNG, TXT)",
        ),
    ],
)
def test_file_inputs_check_supported_and_allowed_types(name, value, problem):
    assert _problems(name, value) == [problem]


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "Metadata",
            {"when": [1, 2, dt.datetime(2025, 1, 1)]},
            "'Metadata'['when'][2]: datetime datetime.datetime(2025, 1, 1, 0, 0) is not JSON: "
            "give a string, e.g. its isoformat()",
        ),
        (
            "Reviewers",
            ("ann", dt.date(2025, 1, 1)),
            "'Reviewers'[1]: date datetime.date(2025, 1, 1) is not JSON: give a string, e.g. its isoformat()",
        ),
        ("Metadata", {"tags": {"a"}}, "'Metadata'['tags']: set {'a'} is not JSON: give a list"),
        ("Metadata", {"raw": [b"x"]}, "'Metadata'['raw'][0]: bytes b'x' is not JSON: give a string (decode it)"),
        (
            "Metadata",
            {"amount": Decimal("1.5")},
            "'Metadata'['amount']: Decimal Decimal('1.5') is not JSON: "
            "give an int or a float, or a string to keep every digit",
        ),
        (
            "Metadata",
            {"a": {"b": _Opaque()}},
            "'Metadata'['a']['b']: _Opaque <opaque> is not JSON: give a string, number, bool, None, list or dict",
        ),
        (
            "Metadata",
            {"x": float("nan")},
            "'Metadata'['x']: float nan is not a JSON number: give a finite number or None",
        ),
        (
            "Reviewers",
            ["ann", float("-inf")],
            "'Reviewers'[1]: float -inf is not a JSON number: give a finite number or None",
        ),
        (
            "Metadata",
            {"big": -(10**400)},
            "'Metadata'['big']: int of about 401 digits is too large for a JSON number: "
            "give a number between -1.8e308 and 1.8e308, or a string",
        ),
        (
            "Threshold",
            10**400,
            "'Threshold': int of about 401 digits is too large for a JSON number: "
            "give a number between -1.8e308 and 1.8e308, or a string",
        ),
        (
            "Metadata",
            {1: "a"},
            "'Metadata'[1]: the key int 1 is not a string, and JSON keys are: give the key as a string",
        ),
        (
            "Metadata",
            {"a": b"x", "b": {"c": {1}}, "d": float("inf")},
            "'Metadata'['a']: bytes b'x' is not JSON: give a string (decode it) (and 2 more places in 'Metadata')",
        ),
        (
            "Reviewers",
            _nested(101),
            "'Reviewers'" + "[0]" * 100 + ": nested more than 100 levels deep: flatten it",
        ),
    ],
    ids=[
        "datetime",
        "date in tuple",
        "set",
        "bytes",
        "decimal",
        "object",
        "nan",
        "-inf",
        "huge int in object",
        "huge int for float",
        "int key",
        "several places",
        "too deep",
    ],
)
def test_values_json_cannot_carry_are_refused_with_their_place(name, value, problem):
    assert _problems(name, value) == [problem]


def test_a_value_that_contains_itself_is_refused():
    loop: dict = {"a": 1}
    loop["self"] = loop
    assert _problems("Metadata", loop) == [
        "'Metadata'['self']: contains the value it is in, which JSON cannot: give a copy without the loop"
    ]


def test_json_values_of_every_kind_are_accepted_as_given():
    shared = [1]
    value = {
        "s": "x",
        "n": None,
        "t": True,
        "i": 10**300,
        "f": -1.5e308,
        "tuple": (1, "a"),
        "shared": [shared, shared],
        "deep": _nested(99),  # 100 levels with the dict it is in
        "é": {"nested": [{}, []]},
    }
    assert _sent("Metadata", value) == value
    json.dumps(_sent("Metadata", value), allow_nan=False)


def test_a_huge_int_is_named_without_printing_it():
    problems = _problems("Customer Name", 10**5000)
    assert problems == ["'Customer Name': expected a string, got int <int of 16610 bits>"]


def test_unknown_schema_type_is_sent_as_given():
    matrix = WorkflowInput.from_schema_entry("workflow_input_m", schema_entry("m", "Matrix", "matrix", True))
    assert matrix.check([[1]]) == ([[1]], [])
    assert matrix.instance_item([[1]]) == {"value": [[1]], "type": "matrix", "displayName": "Matrix"}


JSON_STRING = WorkflowInput("config", "config", "Config", "json_string", False)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        ([1, "x"], '[1, "x"]'),
        ((1, 2), "[1, 2]"),
        ('{"already": "text"}', '{"already": "text"}'),
        ("3", "3"),
    ],
)
def test_json_string_is_sent_as_json_text(value, sent):
    checked, problems = JSON_STRING.check(value)
    assert problems == []
    assert checked == sent
    assert JSON_STRING.instance_item(checked) == {"value": sent, "type": "json_string", "displayName": "Config"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "'Config': expected JSON text, a dict or a list; the string is not JSON"),
        ("NaN", "'Config': expected JSON text, a dict or a list; the string is not JSON (NaN is not JSON)"),
        (5, "'Config': expected JSON text, a dict or a list, got int 5"),
        ({"x": float("nan")}, "'Config'"),
    ],
)
def test_json_string_refuses_what_is_not_json(value, problem):
    _, problems = JSON_STRING.check(value)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


FILE_ITEM = {"id": "file", "variable_name": "file", "allowed_types": [{"type": "file"}]}
FILE_LIST = WorkflowInput("docs", "docs", "Documents", "array", False, type_definition=FILE_ITEM)


def test_a_v2_array_of_files_takes_files_and_sends_its_type_definition():
    assert FILE_LIST.takes_files and FILE_LIST.is_file_array
    checked, problems = FILE_LIST.check(["/data/a.pdf", "https://files.example.com/b.pdf"])
    assert problems == []
    assert FILE_LIST.files_in(checked) == ["/data/a.pdf", "https://files.example.com/b.pdf"]
    assert FILE_LIST.is_missing([])
    assert FILE_LIST.instance_item(["https://x/a.pdf"]) == {
        "value": ["https://x/a.pdf"],
        "type": "array",
        "displayName": "Documents",
        "typeDefinition": FILE_ITEM,
    }
    assert FILE_LIST.check("/data/a.pdf")[1] == [
        "'Documents': expected a list of file URLs or local paths, got '/data/a.pdf'"
    ]


def test_a_v2_array_of_other_items_is_a_plain_array():
    numbers = WorkflowInput("n", "n", "Numbers", "array", False, type_definition={"allowed_types": [{"type": "float"}]})
    assert not numbers.takes_files
    assert numbers.check([1, 2]) == ([1, 2], [])
    assert numbers.instance_item([1])["typeDefinition"] == {"allowed_types": [{"type": "float"}]}


@pytest.mark.parametrize(
    ("name", "value", "files", "missing"),
    [
        ("Invoice", "https://h.test/a.pdf", ["https://h.test/a.pdf"], False),
        ("Supporting Documents", ["a.csv", "b.txt"], ["a.csv", "b.txt"], False),
        ("Supporting Documents", [], [], True),
        ("Supporting Documents", None, [], True),
        ("Metadata", {"f": "x.pdf"}, [], False),
        ("Metadata", None, [], True),
    ],
)
def test_files_in_and_is_missing(name, value, files, missing):
    assert INPUTS[name].files_in(value) == files
    assert INPUTS[name].is_missing(value) is missing
