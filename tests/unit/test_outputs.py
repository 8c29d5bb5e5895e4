"""Reading a job's results in either documented shape (airflow_provider_opus.outputs)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opus.exceptions import OpusResponseError
from airflow_provider_opus.outputs import (
    OpusOutputAmbiguousError,
    OpusOutputNotFoundError,
    job_outputs_from,
    output_value,
)

PATH = "/job/j/results"
FILE = "https://files.opus.com/media/private/generated/output_1.pdf"
WORKFLOW_OUTPUTS = {
    "workflow_output_v1": {"variable_name": "verdict", "display_name": "Verdict", "type": "str"},
    "summary": {"variable_name": "summary", "display_name": "Summary", "type": "str"},
    "report": {"variable_name": "report", "display_name": "Report", "type": "file"},
}


def test_the_example_shape_gives_each_field_and_each_data_entry_by_display_name():
    results = {"summary": "ok", "outputFiles": [FILE], "data": {"verdict": "PASS", "score": 92}, "extra": [1]}
    view = job_outputs_from({"status": "COMPLETED", "results": results}, PATH, WORKFLOW_OUTPUTS)
    assert view.shape == "results"
    assert view.raw is results
    assert view.outputs == {"Summary": "ok", "outputFiles": [FILE], "Verdict": "PASS", "score": 92, "extra": [1]}
    assert view.names == {
        "summary": "Summary",
        "outputFiles": "outputFiles",
        "verdict": "Verdict",
        "score": "score",
        "extra": "extra",
    }
    assert view.output_files == [FILE]


def test_the_schema_shape_reads_values_and_names_from_the_entries():
    raw = {
        "workflow_output_a": {
            "variable_name": "workflow_output_a",
            "display_name": "Verdict",
            "type": "str",
            "value": "PASS",
        },
        "workflow_output_b": {"display_name": "Files", "type": "array_files", "value": [FILE, FILE + "?2"]},
        "workflow_output_c": {"type": "file", "value": FILE},
        "workflow_output_d": {"display_name": "No value", "type": "object"},
        "plain": 3,
    }
    view = job_outputs_from({"jobResultsPayloadSchema": raw}, PATH)
    assert view.shape == "schema"
    assert view.outputs["Verdict"] == "PASS"
    assert view.outputs["Files"] == [FILE, FILE + "?2"]
    assert view.outputs["workflow_output_c"] == FILE
    # An entry without a value is kept whole: nothing Opus sent is dropped.
    assert view.outputs["No value"] == raw["workflow_output_d"]
    assert view.outputs["plain"] == 3
    assert view.output_files == [FILE, FILE + "?2"]  # in order, without repeats


def test_the_workflow_schema_names_and_types_outputs_the_results_name_by_variable_only():
    raw = {"verdict": {"value": "PASS"}, "report": {"value": FILE}}
    view = job_outputs_from({"jobResultsPayloadSchema": raw}, PATH, WORKFLOW_OUTPUTS)
    assert view.outputs == {"Verdict": "PASS", "Report": FILE}
    assert view.output_files == [FILE]


def test_both_shapes_of_one_job_give_the_same_outputs():
    example = {"results": {"summary": "ok", "data": {"verdict": "PASS"}}}
    schema = {"jobResultsPayloadSchema": {"summary": {"value": "ok"}, "verdict": {"value": "PASS"}}}
    assert (
        job_outputs_from(example, PATH, WORKFLOW_OUTPUTS).outputs
        == job_outputs_from(schema, PATH, WORKFLOW_OUTPUTS).outputs
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "COMPLETED"}, r"neither results nor jobResultsPayloadSchema \(fields: status\)"),
        ({"status": "COMPLETED", "results": None}, "neither results nor jobResultsPayloadSchema"),
        ({"results": ["a"]}, "results is list"),
        ({"jobResultsPayloadSchema": "x"}, "jobResultsPayloadSchema is 'x', expected an object"),
        ({"results": {"outputFiles": "abc"}}, "results.outputFiles is 'abc', expected a list of URL strings"),
        ({"results": {"outputFiles": [{"url": "x"}]}}, "results.outputFiles is list"),
        (
            {"jobResultsPayloadSchema": {"r": {"type": "file", "value": 5}}},
            r"jobResultsPayloadSchema.r.value is int 5, expected a URL string",
        ),
    ],
)
def test_results_in_no_readable_shape_are_a_response_error_naming_the_field(body, message):
    with pytest.raises(OpusResponseError, match=message):
        job_outputs_from(body, PATH)


def test_output_value_finds_an_output_by_display_or_variable_name():
    view = job_outputs_from({"results": {"data": {"verdict": "PASS"}}}, PATH, WORKFLOW_OUTPUTS)
    value = view.as_xcom()
    assert output_value(value, "Verdict") == "PASS"
    assert output_value(value, "verdict") == "PASS"
    with pytest.raises(OpusOutputNotFoundError, match=r"no output named 'Score'; its outputs are: 'Verdict'"):
        output_value(value, "Score")


def test_todays_results_name_outputs_by_display_name_in_camel_case():
    body = {
        "jobResultsPayloadSchema": {
            "summary_var": {"value": "Fine", "type": "str", "displayName": "Summary"},
            "report_var": {"value": "https://files.opus.com/r.pdf", "type": "FILE", "displayName": "Generated Report"},
        }
    }
    view = job_outputs_from(body, "/job/j/results")
    assert view.shape == "schema"
    assert view.outputs == {"Summary": "Fine", "Generated Report": "https://files.opus.com/r.pdf"}
    assert view.names == {"summary_var": "Summary", "report_var": "Generated Report"}
    assert view.output_files == ["https://files.opus.com/r.pdf"]


def test_outputs_that_share_a_display_name_are_each_reachable_by_variable_name():
    # Two variables both shown as "Score": one was lost, and the variable name found the other's value.
    body = {
        "jobResultsPayloadSchema": {
            "score": {"value": 0.91, "type": "float", "displayName": "Score"},
            "quality_score": {"value": 0.12, "type": "float", "displayName": "Score"},
            "verdict": {"value": "PASS", "type": "str", "displayName": "Verdict"},
        }
    }
    view = job_outputs_from(body, PATH)
    assert view.outputs == {"score": 0.91, "quality_score": 0.12, "Verdict": "PASS"}
    value = view.as_xcom()
    assert output_value(value, "score") == 0.91
    assert output_value(value, "quality_score") == 0.12
    assert output_value(value, "Verdict") == output_value(value, "verdict") == "PASS"
    with pytest.raises(OpusOutputAmbiguousError, match=r"2 outputs named 'Score' \(variable names: 'score', 'q"):
        output_value(value, "Score")
    (warning,) = view.warnings
    assert "2 outputs have the display name 'Score' ('score', 'quality_score')" in warning


def test_a_display_name_that_is_another_outputs_variable_name_does_not_hide_it():
    body = {
        "jobResultsPayloadSchema": {
            "total": {"value": 1, "displayName": "score"},
            "score": {"value": 2, "displayName": "Score"},
        }
    }
    view = job_outputs_from(body, PATH)
    assert view.outputs == {"total": 1, "Score": 2}
    assert output_value(view.as_xcom(), "score") == 2  # a variable name always finds its own output
    assert output_value(view.as_xcom(), "total") == 1
    assert any("'score', which is another output's variable name" in warning for warning in view.warnings)


def test_a_results_field_and_a_data_field_of_one_name_are_both_reachable():
    # results.data.summary was hidden by results.summary.
    results = {"summary": "Job executed successfully.", "data": {"summary": "Two invoices", "verdict": "PASS"}}
    view = job_outputs_from({"results": results}, PATH, WORKFLOW_OUTPUTS)
    assert view.outputs == {
        "results.summary": "Job executed successfully.",
        "Summary": "Two invoices",
        "Verdict": "PASS",
    }
    assert view.names["summary"] == "Summary" and view.names["results.summary"] == "results.summary"
    assert output_value(view.as_xcom(), "summary") == "Two invoices"
    assert output_value(view.as_xcom(), "results.summary") == "Job executed successfully."
    assert any("results.summary and results.data.summary have one name" in warning for warning in view.warnings)


def test_an_output_with_an_empty_name_gets_one():
    body = {"jobResultsPayloadSchema": {"": {"value": 1}, " ": {"value": 2, "displayName": "Two"}, "x": {"value": 3}}}
    view = job_outputs_from(body, PATH)
    assert view.outputs == {"unnamed_output_1": 1, "Two": 2, "x": 3}
    assert view.names == {"unnamed_output_1": "unnamed_output_1", "unnamed_output_2": "Two", "x": "x"}
    assert sum("has an empty name" in warning for warning in view.warnings) == 2


def test_a_repeated_variable_name_is_named_by_its_place():
    body = {
        "jobResultsPayloadSchema": {"a": {"variable_name": "v", "value": 1}, "b": {"variable_name": "v", "value": 2}}
    }
    view = job_outputs_from(body, PATH)
    assert view.outputs == {"v": 1, "jobResultsPayloadSchema.b": 2}


def test_the_return_value_holds_each_value_once():
    # The raw results, outputs and each output's XCom held every value three times (18.2 MiB for 6.1).
    body = {
        "jobResultsPayloadSchema": {f"out_{n}": {"value": "x" * 1000, "displayName": f"Out {n}"} for n in range(50)}
    }
    value = job_outputs_from(body, PATH).as_xcom()
    assert "results" not in value
    assert len(json.dumps(value)) < 50 * 1000 * 1.2
    with_raw = job_outputs_from(body, PATH).as_xcom(include_raw=True)
    assert with_raw["results"] == body["jobResultsPayloadSchema"]
