"""lineage.py: dataset naming, the facts a task records, and their mapping to OpenLineage's OperatorLineage."""

from __future__ import annotations

import json
import os

import pytest

from airflow_provider_opus.exceptions import OpusJobFailedError
from airflow_provider_opus.lineage import (
    LineageFacts,
    file_dataset_name,
    operator_lineage,
    task_error,
    workflow_dataset_name,
)

AUDIT_TAIL = [
    {"timestamp": "2026-01-01T10:00:00Z", "actor": "SYSTEM", "action": "Job execution started"},
    {"timestamp": "2026-01-01T10:05:00Z", "actor": "SYSTEM", "action": "Job failed: the invoice is unreadable"},
]


def full_facts() -> LineageFacts:
    facts = LineageFacts(api_url="https://operator.opus.com", job_execution_id="J1", job_status="COMPLETED")
    facts.record_workflow("W1", {"name": "Invoice Review", "description": "Reviews an invoice."})
    facts.add_inputs(["/data/invoice.pdf", "https://files.opus.com/media/private/uploaded/a.pdf"])
    facts.output_files = ["https://files.opus.com/media/private/generated/output_J1.pdf"]
    return facts


@pytest.fixture
def openlineage():
    """The OpenLineage provider; these tests are skipped where it is not installed (the older-Airflow venvs)."""
    return pytest.importorskip("airflow.providers.openlineage.extractors")


# -- naming (no OpenLineage needed) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("https://files.opus.com/media/a.pdf", ("https://files.opus.com", "/media/a.pdf")),
        # The query may hold a signature and the user info credentials: neither is part of the name.
        (
            "HTTPS://user:secret@Files.Opus.com:8443/media/a.pdf?X-Amz-Signature=s#f",
            ("https://files.opus.com:8443", "/media/a.pdf"),
        ),
        ("http://127.0.0.1:9000/media/a.pdf", ("http://127.0.0.1:9000", "/media/a.pdf")),
        ("http://[::1]:9000/a.pdf", ("http://[::1]:9000", "/a.pdf")),
        ("https://files.opus.com", ("https://files.opus.com", "/")),
        ("file:///data/a.pdf", ("file", "/data/a.pdf")),
        ("/data/a.pdf", ("file", "/data/a.pdf")),
    ],
)
def test_file_datasets_follow_the_openlineage_naming_conventions(location, expected):
    assert file_dataset_name(location) == expected


def test_a_relative_local_path_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert file_dataset_name("data/a.pdf") == ("file", os.path.join(str(tmp_path), "data", "a.pdf"))


@pytest.mark.parametrize(
    ("api_url", "namespace"),
    [
        ("https://operator.opus.com", "opus://operator.opus.com"),
        ("https://operator.opus.com/api/v1", "opus://operator.opus.com"),
        ("http://127.0.0.1:8080", "opus://127.0.0.1:8080"),
    ],
)
def test_a_workflow_is_named_by_the_api_host(api_url, namespace):
    assert workflow_dataset_name(api_url, "W1") == (namespace, "workflows/W1")


# -- facts -------------------------------------------------------------------------------------------


def test_a_failed_jobs_error_gives_its_id_status_and_audit_tail():
    facts = LineageFacts()
    facts.record_failure(OpusJobFailedError("J9", "FAILED", AUDIT_TAIL))
    assert (facts.job_execution_id, facts.job_status, facts.audit_tail) == ("J9", "FAILED", AUDIT_TAIL)
    assert "Job failed: the invoice is unreadable" in str(facts.failure)


def test_a_failures_message_in_lineage_is_cleaned_of_secrets():
    # A library's error (not an OpusError) carried a presigned URL's signature into errorMessage (#20 item 11).
    facts = LineageFacts()
    facts.record_failure(ValueError("GET https://u:pw@b.s3.example/f.pdf?X-Amz-Signature=sig123 failed"))
    assert facts.failure == "GET https://***@b.s3.example/f.pdf?*** failed"


def test_another_error_gives_its_message_only():
    facts = LineageFacts(job_execution_id="J1")
    facts.record_failure(ValueError("boom"))
    facts.record_failure(None)
    assert (facts.failure, facts.job_execution_id, facts.audit_tail) == ("boom", "J1", [])


def test_inputs_are_kept_once_in_order():
    facts = LineageFacts()
    facts.add_inputs(["b", "a", "b"])
    facts.add_inputs(["a", "c"])
    assert facts.input_files == ["b", "a", "c"]


def test_workflow_details_without_a_name_still_count_as_read():
    facts = LineageFacts()
    facts.record_workflow("W1")
    assert not facts.workflow_read
    facts.record_workflow("W1", {"name": "  ", "description": 3})
    assert facts.workflow_read and (facts.workflow_name, facts.workflow_description) == (None, None)


def test_facts_cross_a_deferral_as_json():
    facts = full_facts()
    data = json.loads(json.dumps(facts.to_dict()))
    assert LineageFacts.from_dict(data) == facts
    # A newer provider's extra field, or no facts at all (a trigger deferred by an older version).
    assert LineageFacts.from_dict({**data, "something_new": 1}) == facts
    assert LineageFacts.from_dict(None) == LineageFacts()


def test_the_task_error_is_read_from_the_task_context():
    error = OpusJobFailedError("J1", "FAILED")

    class TaskInstance:
        def __init__(self, context):
            self.context = context

        def get_template_context(self):
            if self.context is None:
                raise RuntimeError("no context")
            return self.context

    assert task_error(TaskInstance({"exception": error})) is error
    assert task_error(TaskInstance({"exception": "text"})) is None
    assert task_error(TaskInstance(None)) is None
    assert task_error(None) is None


# -- facts to OperatorLineage ------------------------------------------------------------------------


def names(datasets) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


def test_a_completed_job_maps_to_inputs_outputs_and_facets(openlineage):
    from openlineage.client.serde import Serde

    lineage = operator_lineage(full_facts())

    assert isinstance(lineage, openlineage.OperatorLineage)
    assert names(lineage.inputs) == [
        ("opus://operator.opus.com", "workflows/W1"),
        ("file", "/data/invoice.pdf"),
        ("https://files.opus.com", "/media/private/uploaded/a.pdf"),
    ]
    assert names(lineage.outputs) == [("https://files.opus.com", "/media/private/generated/output_J1.pdf")]
    assert lineage.job_facets["documentation"].description == "Invoice Review: Reviews an invoice."
    assert lineage.run_facets["externalQuery"].externalQueryId == "J1"
    assert lineage.run_facets["externalQuery"].source == "opus"
    opus_job = json.loads(Serde.to_json(lineage.run_facets["opus_job"]))
    assert {key: value for key, value in opus_job.items() if not key.startswith("_")} == {
        "jobExecutionId": "J1",
        "workflowId": "W1",
        "workflowName": "Invoice Review",
        "status": "COMPLETED",
    }
    assert opus_job["_schemaURL"].endswith("RunFacet")
    assert "errorMessage" not in lineage.run_facets


def test_a_failed_job_maps_to_an_error_facet_with_the_audit_tail(openlineage):
    facts = LineageFacts(api_url="https://operator.opus.com", workflow_id="W1")
    facts.record_failure(OpusJobFailedError("J9", "FAILED", AUDIT_TAIL))

    lineage = operator_lineage(facts)

    error = lineage.run_facets["errorMessage"]
    assert error.programmingLanguage == "python"
    assert "Job failed: the invoice is unreadable" in error.message and "J9" in error.message
    assert lineage.run_facets["opus_job"].auditTail == AUDIT_TAIL
    assert lineage.run_facets["opus_job"].status == "FAILED"
    assert lineage.outputs == []
    assert "documentation" not in lineage.job_facets  # the details were never read


def test_an_upload_maps_local_files_to_file_urls(openlineage):
    facts = LineageFacts(input_files=["/data/a.pdf"], output_files=["https://files.opus.com/media/a.pdf"])

    lineage = operator_lineage(facts)

    assert names(lineage.inputs) == [("file", "/data/a.pdf")]
    assert names(lineage.outputs) == [("https://files.opus.com", "/media/a.pdf")]
    assert lineage.run_facets == {} and lineage.job_facets == {}


def test_nothing_known_maps_to_empty_lineage(openlineage):
    lineage = operator_lineage(LineageFacts())
    assert (lineage.inputs, lineage.outputs, lineage.run_facets, lineage.job_facets) == ([], [], {}, {})


def test_a_workflow_name_alone_documents_the_job(openlineage):
    facts = LineageFacts(api_url="https://operator.opus.com")
    facts.record_workflow("W1", {"name": "Invoice Review"})
    assert operator_lineage(facts).job_facets["documentation"].description == "Invoice Review"


def test_a_location_that_cannot_be_named_leaves_out_only_itself(openlineage, caplog):
    # A URL that does not parse dropped ALL output datasets: operator_lineage raised ValueError.
    facts = LineageFacts(
        api_url="https://operator.opus.com",
        workflow_id="W1",
        input_files=["http://[zz]/in.pdf", "/data/invoice.pdf"],
        output_files=[
            "https://files.opus.com/media/a.pdf",
            "http://[::1/broken.pdf",
            "https://user:secret@[::1/b.pdf?signature=s3cr3t",
            "https://files.opus.com/media/c.pdf",
        ],
    )
    with caplog.at_level("WARNING", logger="airflow_provider_opus.lineage"):
        lineage = operator_lineage(facts)
    assert names(lineage.inputs) == [("opus://operator.opus.com", "workflows/W1"), ("file", "/data/invoice.pdf")]
    assert names(lineage.outputs) == [
        ("https://files.opus.com", "/media/a.pdf"),
        ("https://files.opus.com", "/media/c.pdf"),
    ]
    logged = caplog.text
    assert "the file http://[::1/broken.pdf is left out of the lineage" in logged and "Invalid IPv6 URL" in logged
    assert "the file https://[::1/b.pdf is left out" in logged
    assert "secret" not in logged and "s3cr3t" not in logged


def test_an_api_url_that_cannot_be_named_leaves_out_only_the_workflow(openlineage):
    facts = LineageFacts(api_url="https://[::1", workflow_id="W1", output_files=["https://files.opus.com/a.pdf"])
    lineage = operator_lineage(facts)
    assert lineage.inputs == []
    assert names(lineage.outputs) == [("https://files.opus.com", "/a.pdf")]


def test_a_pinned_workflow_version_is_in_the_opus_job_facet(openlineage):
    from openlineage.client.serde import Serde

    facts = LineageFacts(api_url="https://operator.opus.com", workflow_id="W1", workflow_version="3")
    facts.job_execution_id = "J1"
    opus_job = json.loads(Serde.to_json(operator_lineage(facts).run_facets["opus_job"]))
    assert opus_job["workflowVersion"] == "3"
