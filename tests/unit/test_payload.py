"""payload.py: building and validating the jobPayloadSchemaInstance from user inputs and a workflow's schema."""

from __future__ import annotations

import copy
import datetime as dt
import unicodedata
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.exceptions import OpusPayloadError
from airflow_provider_opus.payload import JobPayloadSchema, WorkflowInput, build_job_payload
from tests.unit.workflow_schema import SCHEMA, schema_entry

WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"


ALL_NAMES = "Customer Name, Threshold, Invoice, Priority, Reviewers, Metadata, Due Date, Supporting Documents"
INVOICE_URL = "https://files.opus.com/media/private/uploaded/media_file_001.pdf"
REQUIRED = {"Customer Name": "ACME", "Threshold": 45.8, "Invoice": INVOICE_URL, "Due Date": "2025-11-09"}


@pytest.fixture
def schema() -> JobPayloadSchema:
    # A deep copy, so no test can change the schema another test reads.
    return JobPayloadSchema(copy.deepcopy(SCHEMA), WORKFLOW_ID)


def _problems(call, *args, **kwargs) -> list[str]:
    with pytest.raises(OpusPayloadError) as raised:
        call(*args, **kwargs)
    return raised.value.problems


def _sent(schema: JobPayloadSchema, name: str, value) -> object:
    """The value ``build`` sends for one input given alongside valid required inputs."""
    instance = schema.build({**REQUIRED, name: value})
    return instance[schema.resolve(name).variable_name]["value"]


# --- schema reading ----------------------------------------------------------------------------------


def test_inputs_are_read_from_the_schema_in_order(schema):
    assert [inp.display_name for inp in schema.inputs] == ALL_NAMES.split(", ")
    assert schema.inputs[2] == WorkflowInput(
        variable_name="workflow_input_h69vx5i4a",
        id="h69vx5i4a",
        display_name="Invoice",
        type="file",
        is_nullable=False,
        allowed_file_types=frozenset({"pdf", "png", "jpg", "jpeg"}),
    )
    assert schema.inputs[0].allowed_file_types is None


# --- resolving keys -----------------------------------------------------------------------------------


KEYS_FOR_THRESHOLD = ["Threshold", "workflow_input_a0hk6ujuo", "a0hk6ujuo", "threshold", "THRESHOLD"]


@pytest.mark.parametrize("key", KEYS_FOR_THRESHOLD)
def test_resolve_by_display_name_variable_name_id_or_display_name_in_any_case(schema, key):
    assert schema.resolve(key).variable_name == "workflow_input_a0hk6ujuo"


def test_resolve_unknown_key_lists_every_input(schema):
    with pytest.raises(OpusPayloadError) as raised:
        schema.resolve("Foo")
    problem = f"'Foo' is not an input of this workflow (inputs: {ALL_NAMES})"
    assert str(raised.value) == f"1 input is invalid for workflow {WORKFLOW_ID}: {problem}"
    assert raised.value.problems == [problem]


def test_ids_are_not_matched_in_any_case(schema):
    assert _problems(schema.resolve, "A0HK6UJUO") == [
        f"'A0HK6UJUO' is not an input of this workflow (inputs: {ALL_NAMES})"
    ]


def _twin_schema() -> JobPayloadSchema:
    return JobPayloadSchema(
        {
            "workflow_input_x": schema_entry("x", "Amount", "float", False),
            "workflow_input_y": schema_entry("y", "Amount", "float", False),
            "workflow_input_z": schema_entry("z", "amount", "float", False),
            "workflow_input_w": schema_entry("w", "Net", "float", False),
            "workflow_input_v": schema_entry("v", "workflow_input_w", "float", True),
        }
    )


def test_ambiguous_display_name_asks_for_the_variable_name():
    assert _problems(_twin_schema().resolve, "Amount") == [
        "'Amount' matches several inputs (workflow_input_x, workflow_input_y): use the variable name"
    ]


def test_case_insensitive_match_must_be_unambiguous_but_an_exact_one_wins():
    twins = _twin_schema()
    assert twins.resolve("amount").variable_name == "workflow_input_z"
    variable_names = "workflow_input_x, workflow_input_y, workflow_input_z"
    assert _problems(twins.resolve, "AMOUNT") == [
        f"'AMOUNT' matches several inputs ({variable_names}): use the variable name"
    ]


def test_variable_name_wins_over_another_inputs_display_name():
    assert _twin_schema().resolve("workflow_input_w").display_name == "Net"


def test_same_input_given_twice_is_a_problem(schema):
    inputs = {**REQUIRED, "workflow_input_we4tej0ly": "Other", "customer name": "x"}
    problems = _problems(schema.build, inputs)
    twice = "'Customer Name' is given more than once (as 'Customer Name' and"
    assert problems == [
        f"{twice} 'workflow_input_we4tej0ly'): give it once",
        f"{twice} 'customer name'): give it once",
    ]


# --- building --------------------------------------------------------------------------------------


def test_build_full_payload():
    inputs = {
        "Customer Name": "API Test Project",
        "workflow_input_a0hk6ujuo": 45.8,
        "h69vx5i4a": INVOICE_URL,
        "Priority": True,
        "Reviewers": ("User1", "User2"),
        "Metadata": {"client_id": "C-456", "is_priority": True},
        "Due Date": dt.date(2025, 11, 9),
        "Supporting Documents": ["https://files.opus.com/media/report.docx", "https://x.test/image.png"],
    }
    assert build_job_payload(SCHEMA, inputs, workflow_id=WORKFLOW_ID) == {
        "workflow_input_we4tej0ly": {
            "value": "API Test Project",
            "type": "str",
            "displayName": "Customer Name",
        },
        "workflow_input_a0hk6ujuo": {"value": 45.8, "type": "float", "displayName": "Threshold"},
        "workflow_input_h69vx5i4a": {"value": INVOICE_URL, "type": "file", "displayName": "Invoice"},
        "workflow_input_m2z6rkzgj": {"value": True, "type": "bool", "displayName": "Priority"},
        "workflow_input_2kbsjrx1y": {
            "value": ["User1", "User2"],
            "type": "array",
            "displayName": "Reviewers",
        },
        "workflow_input_bzti690ga": {
            "value": {"client_id": "C-456", "is_priority": True},
            "type": "object",
            "displayName": "Metadata",
        },
        "workflow_input_k3ayfjyh7": {"value": "2025-11-09", "type": "date", "displayName": "Due Date"},
        "workflow_input_auqgnzk8d": {
            "value": ["https://files.opus.com/media/report.docx", "https://x.test/image.png"],
            "type": "array_files",
            "displayName": "Supporting Documents",
        },
    }


def test_values_in_messages_are_truncated(schema):
    long_value = "x" * 500
    with pytest.raises(OpusPayloadError) as raised:
        schema.build({**REQUIRED, "Threshold": long_value, "y" * 500: 1})
    shown = "'" + "x" * 56 + "..."
    assert len(shown) == 60
    assert raised.value.problems == [
        f"'Threshold': expected a number, got {shown}",
        f"'{'y' * 56}... is not an input of this workflow (inputs: {ALL_NAMES})",
    ]
    assert "x" * 57 not in str(raised.value)
    assert "y" * 57 not in str(raised.value)


def test_unknown_schema_type_is_passed_through_with_one_warning(caplog):
    # Opus adds types: a workflow with a new one still runs, its value sent with the schema's type.
    from airflow_provider_opus import workflow_inputs

    workflow_inputs._warned_types.discard("matrix")
    schema = JobPayloadSchema({"workflow_input_m": schema_entry("m", "Matrix", "matrix", True)})
    with caplog.at_level("WARNING", logger="airflow_provider_opus.workflow_inputs"):
        first = schema.build({"Matrix": [[1]]})
        schema.build({"Matrix": [[2]]})
    assert first == {"workflow_input_m": {"value": [[1]], "type": "matrix", "displayName": "Matrix"}}
    warnings = [record.getMessage() for record in caplog.records if "does not know" in record.getMessage()]
    assert warnings == [
        "Input 'Matrix' has type 'matrix', which this provider does not know: its value is sent as given"
    ]
    # What JSON cannot carry still fails before any call.
    assert _problems(schema.build, {"Matrix": float("nan")}) != []
    # Left out, a nullable input of an unknown type sends nothing, so there is nothing wrong.
    assert schema.build({}) == {}


def test_inputs_must_be_a_mapping(schema):
    assert _problems(schema.build, '{"Threshold": 1}') == [
        "inputs must be a dict of input name to value, got '{\"Threshold\": 1}'"
    ]


# --- required and nullable --------------------------------------------------------------------------


def test_required_inputs_missing_or_none(schema):
    assert _problems(schema.build, {"Customer Name": None, "Invoice": INVOICE_URL}) == [
        "'Customer Name' is required",
        "'Threshold' is required",
        "'Due Date' is required",
    ]


def test_nullable_inputs_left_out_are_omitted_and_none_is_sent_as_null(schema):
    instance = schema.build({**REQUIRED, "Priority": None, "Supporting Documents": []})
    assert list(instance) == [
        "workflow_input_we4tej0ly",
        "workflow_input_a0hk6ujuo",
        "workflow_input_h69vx5i4a",
        "workflow_input_m2z6rkzgj",
        "workflow_input_k3ayfjyh7",
        "workflow_input_auqgnzk8d",
    ]
    assert instance["workflow_input_m2z6rkzgj"] == {"value": None, "type": "bool", "displayName": "Priority"}
    assert instance["workflow_input_auqgnzk8d"]["value"] == []


def test_empty_file_list_does_not_fill_a_required_input():
    schema_dict = copy.deepcopy(SCHEMA)
    schema_dict["workflow_input_auqgnzk8d"]["is_nullable"] = False
    schema = JobPayloadSchema(schema_dict)
    for empty in ([], ()):
        problems = _problems(schema.build, {**REQUIRED, "Supporting Documents": empty})
        assert problems == ["'Supporting Documents' is required"]


# --- dates ------------------------------------------------------------------------------------------


# --- file extensions --------------------------------------------------------------------------------


# --- local files and uploads ------------------------------------------------------------------------


def test_local_file_paths_lists_each_local_file_once(schema):
    inputs = {
        **REQUIRED,
        "Invoice": Path("/data/invoice.pdf"),
        "Supporting Documents": [
            "/data/notes.txt",
            "https://h.test/a.csv",
            "/data/invoice.pdf",
            Path("rel/b.png"),
        ],
    }
    assert schema.local_file_paths(inputs) == ["/data/invoice.pdf", "/data/notes.txt", "rel/b.png"]
    assert schema.local_file_paths(REQUIRED) == []


def test_local_file_paths_validates_first(schema):
    problems = _problems(schema.local_file_paths, {"Invoice": "/data/invoice.exe", "Threshold": "x"})
    assert problems == [
        "'Invoice': file type '.exe' is not allowed for this input (allowed: JPEG, JPG, PDF, PNG)",
        "'Threshold': expected a number, got 'x'",
        "'Customer Name' is required",
        "'Due Date' is required",
    ]


def test_build_substitutes_uploaded_file_urls(schema):
    uploaded = {
        "/data/invoice.pdf": "https://files.opus.com/media/u1.pdf",
        "/data/notes.txt": "https://files.opus.com/media/u2.txt",
    }
    inputs = {
        **REQUIRED,
        "Invoice": Path("/data/invoice.pdf"),
        "Supporting Documents": ["/data/notes.txt", "https://h.test/a.csv"],
    }
    instance = schema.build(inputs, uploaded=uploaded)
    assert instance["workflow_input_h69vx5i4a"]["value"] == "https://files.opus.com/media/u1.pdf"
    assert instance["workflow_input_auqgnzk8d"]["value"] == [
        "https://files.opus.com/media/u2.txt",
        "https://h.test/a.csv",
    ]


def test_build_refuses_local_files_not_uploaded(schema):
    inputs = {
        **REQUIRED,
        "Invoice": "/data/invoice.pdf",
        "Supporting Documents": ["/data/a.txt", "/data/b.csv"],
    }
    with pytest.raises(OpusPayloadError) as raised:
        schema.build(inputs, uploaded={"/data/a.txt": "https://files.opus.com/a.txt"})
    assert str(raised.value) == (
        f"2 inputs are invalid for workflow {WORKFLOW_ID}: "
        "'Invoice': local file '/data/invoice.pdf' was not uploaded; "
        "'Supporting Documents': local file '/data/b.csv' was not uploaded"
    )


# --- the aggregated error ---------------------------------------------------------------------------


def test_all_problems_in_one_error_with_the_exact_message(schema):
    inputs = {"Due Date": "tomorrow", "Customer Name": "ACME", "Invoice": INVOICE_URL, "Foo": 1}
    with pytest.raises(OpusPayloadError) as raised:
        schema.build(inputs)
    assert str(raised.value) == (
        "3 inputs are invalid for workflow B9uGJfZ3CFwOdMKH: "
        "'Due Date': expected a date (YYYY-MM-DD), got 'tomorrow'; "
        "'Threshold' is required; "
        "'Foo' is not an input of this workflow (inputs: Customer Name, Threshold, Invoice, Priority, "
        "Reviewers, Metadata, Due Date, Supporting Documents)"
    )
    assert len(raised.value.problems) == 3
    # No Airflow retry can fix bad inputs.
    assert isinstance(raised.value, AirflowFailException)


def test_message_without_a_workflow_id():
    JobPayloadSchema(SCHEMA).build(REQUIRED)
    with pytest.raises(OpusPayloadError, match=r"^1 input is invalid: 'Threshold' is required$"):
        JobPayloadSchema(SCHEMA).build({**REQUIRED, "Threshold": None})


# --- a jobPayloadSchemaInstance given directly ------------------------------------------------------


def _instance() -> dict:
    return {
        "workflow_input_we4tej0ly": {"value": "API Test Project", "type": "str"},
        "workflow_input_a0hk6ujuo": {"value": 45.8, "type": "float"},
        "workflow_input_h69vx5i4a": {"value": INVOICE_URL, "type": "file"},
        "workflow_input_m2z6rkzgj": {"value": True, "type": "bool"},
        "workflow_input_2kbsjrx1y": {"value": ["User1", "User2", "User3"], "type": "array"},
        "workflow_input_bzti690ga": {"value": {"client_id": "C-456"}, "type": "object"},
        "workflow_input_k3ayfjyh7": {"value": "2025-11-09", "type": "date"},
        "workflow_input_auqgnzk8d": {"value": ["https://h.test/report.docx"], "type": "array_files"},
    }


def test_validate_instance_accepts_the_documented_example(schema):
    schema.validate_instance(_instance())
    # What build() returns is a valid instance too.
    schema.validate_instance(schema.build(REQUIRED))


def test_validate_instance_reports_every_problem(schema):
    instance = _instance()
    del instance["workflow_input_we4tej0ly"]
    instance["workflow_input_a0hk6ujuo"] = {"value": True, "type": "float"}
    instance["workflow_input_h69vx5i4a"] = INVOICE_URL
    instance["workflow_input_m2z6rkzgj"] = {"value": True}
    instance["workflow_input_2kbsjrx1y"] = {"value": ["a"], "type": "list"}
    instance["workflow_input_k3ayfjyh7"] = {"value": None, "type": "date"}
    instance["Metadata"] = {"value": {}, "type": "object"}
    assert _problems(schema.validate_instance, instance) == [
        "'Threshold': expected a number, got bool True",
        "'Invoice': expected {'value': ..., 'type': 'file'}, "
        "got 'https://files.opus.com/media/private/uploaded/media_file...",
        "'Priority': expected {'value': ..., 'type': 'bool'}, got dict {'value': True}",
        "'Reviewers': type 'list' does not match the workflow's type 'array'",
        "'Customer Name' is required",
        "'Due Date' is required",
        "'Metadata' is not a variable name of this workflow (variable names: workflow_input_we4tej0ly, "
        "workflow_input_a0hk6ujuo, workflow_input_h69vx5i4a, workflow_input_m2z6rkzgj, "
        "workflow_input_2kbsjrx1y, workflow_input_bzti690ga, workflow_input_k3ayfjyh7, "
        "workflow_input_auqgnzk8d)",
    ]


AS_IS = "as the instance is sent as is, got"


@pytest.mark.parametrize(
    ("variable_name", "value", "problem"),
    [
        (
            "workflow_input_k3ayfjyh7",
            dt.date(2025, 11, 9),
            f"'Due Date': expected '2025-11-09' {AS_IS} date datetime.date(2025, 11, 9)",
        ),
        (
            "workflow_input_k3ayfjyh7",
            "2025-11-09T10:00:00Z",
            f"'Due Date': expected '2025-11-09' {AS_IS} '2025-11-09T10:00:00Z'",
        ),
        (
            "workflow_input_2kbsjrx1y",
            ("a",),
            f"'Reviewers': expected ['a'] {AS_IS} tuple ('a',)",
        ),
        (
            "workflow_input_auqgnzk8d",
            ["https://h.test/a.exe"],
            "'Supporting Documents'[0]: file type '.exe' is not allowed for this input "
            "(allowed: CSV, DOCX, PDF, PNG, TXT)",
        ),
    ],
)
def test_validate_instance_wants_values_as_sent(schema, variable_name, value, problem):
    instance = _instance()
    instance[variable_name]["value"] = value
    assert _problems(schema.validate_instance, instance) == [problem]


def test_validate_instance_lets_nullable_inputs_be_left_out_or_null(schema):
    instance = {k: v for k, v in _instance().items() if k != "workflow_input_m2z6rkzgj"}
    instance["workflow_input_auqgnzk8d"] = {"value": None, "type": "array_files"}
    schema.validate_instance(instance)


def test_validate_instance_must_be_a_mapping(schema):
    problems = _problems(schema.validate_instance, [1])
    assert problems == ["the jobPayloadSchemaInstance must be a dict, got list [1]"]


def test_validate_instance_rejects_local_paths_in_file_inputs():
    schema = JobPayloadSchema(SCHEMA, workflow_id=WORKFLOW_ID)
    instance = {
        "workflow_input_we4tej0ly": {"value": "ACME", "type": "str"},
        "workflow_input_a0hk6ujuo": {"value": 1.0, "type": "float"},
        "workflow_input_h69vx5i4a": {"value": "/data/invoice.pdf", "type": "file"},
        "workflow_input_k3ayfjyh7": {"value": "2025-11-09", "type": "date"},
    }
    with pytest.raises(OpusPayloadError) as info:
        schema.validate_instance(instance)
    assert info.value.problems == [
        "'Invoice': '/data/invoice.pdf' is a local path, and an instance is sent as is: give a fileUrl, "
        "or pass the path in inputs= to have it uploaded first"
    ]


# --- values JSON cannot carry ------------------------------------------------------------------------


def test_validate_instance_checks_values_and_other_fields_for_json(schema):
    instance = _instance()
    instance["workflow_input_bzti690ga"] = {"value": {"when": dt.date(2025, 1, 1)}, "type": "object"}
    instance["workflow_input_2kbsjrx1y"] = {"value": [], "type": "array", "displayName": float("nan")}
    assert _problems(schema.validate_instance, instance) == [
        "'Reviewers'['displayName']: float nan is not a JSON number: give a finite number or None",
        "'Metadata'['when']: date datetime.date(2025, 1, 1) is not JSON: give a string, e.g. its isoformat()",
    ]


# --- names in any Unicode normal form ------------------------------------------------------------------


def test_display_names_match_in_any_unicode_normal_form():
    nfc, nfd = "Café", unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    for schema_name, typed in ((nfc, nfd), (nfd, nfc), (nfc, "CAFE\u0301"), (nfd, "CAFÉ")):
        schema = JobPayloadSchema({"workflow_input_c1": schema_entry("c1", schema_name, "str", True)})
        assert schema.resolve(typed).variable_name == "workflow_input_c1", (schema_name, typed)


def test_names_equal_once_normalised_are_ambiguous():
    nfc, nfd = "Café", unicodedata.normalize("NFD", "Café")
    schema = JobPayloadSchema(
        {f"workflow_input_{i}": schema_entry(i, name, "str", True) for i, name in (("a", nfc), ("b", nfd))}
    )
    with pytest.raises(OpusPayloadError, match=r"matches several inputs .*use the variable name"):
        schema.resolve(nfc)


def test_instance_files_lists_the_file_inputs_values_once_in_schema_order(schema):
    other = "https://files.opus.com/media/private/uploaded/media_file_002.csv"
    instance = schema.build({**REQUIRED, "Supporting Documents": [other, INVOICE_URL], "Metadata": {"f": "x.pdf"}})
    assert schema.instance_files(instance) == [INVOICE_URL, other]
    assert schema.instance_files(schema.build({**REQUIRED, "Supporting Documents": None})) == [INVOICE_URL]
    assert schema.instance_files({}) == []
