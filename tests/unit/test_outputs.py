"""Reading a job's results in either documented shape (airflow_provider_opus.outputs)."""

from __future__ import annotations

import pytest

from airflow_provider_opus.exceptions import OpusResponseError
from airflow_provider_opus.outputs import OpusOutputNotFoundError, job_outputs_from, output_value

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
