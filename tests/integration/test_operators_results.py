"""operators/results.py: OpusGetJobResultsOperator against the emulator, over real loopback HTTP."""

from __future__ import annotations

import json
import os
import textwrap
from urllib.parse import quote

import pytest
from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_opus.downloads import MAX_FILE_NAME_CHARS
from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.emulator.output_files import expected_output_file
from airflow_provider_opus.exceptions import OpusError, OpusInvalidArgumentError, OpusJobFailedError, OpusResponseError
from airflow_provider_opus.operators.opus import OpusGetJobResultsOperator
from airflow_provider_opus.operators.results import xcom_key_problem
from airflow_provider_opus.outputs import output_value
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import LoopbackHTTPServer, QuietHandler, execute_op, in_dag, render_task, run_dag_file
from tests.support.task_context import make_context

pytestmark = pytest.mark.integration


def completed_job() -> str:
    return execute_op().execute(make_context())


def test_results_operator_returns_results_and_audit(emulator):
    job_id = completed_job()
    context = make_context()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID)
    out = op.execute(context)
    assert out["job_execution_id"] == job_id and out["status"] == "COMPLETED"
    assert out["results_shape"] == "results"
    assert "results" not in out  # each value is stored once: in outputs
    assert out["outputs"]["Verdict"] == "PASS" and out["output_names"]["verdict"] == "Verdict"
    assert out["output_files"] == out["outputs"]["Output Files"]
    assert out["audit_trail"][-1]["action"] == "Job completed successfully"
    assert json.loads(json.dumps(out)) == out  # plain JSON for XCom
    # Each output is an XCom of its own, keyed by display name.
    assert context["ti"].xcom["Verdict"] == "PASS"
    # Without the workflow, outputs the results name by variable only keep that name.
    lean = OpusGetJobResultsOperator(task_id="r2", job_execution_id=job_id, include_audit_log=False, push_outputs=False)
    lean_context = make_context()
    lean_out = lean.execute(lean_context)
    assert lean_out["audit_trail"] == [] and lean_out["outputs"]["verdict"] == "PASS"
    assert "verdict" not in lean_context["ti"].xcom
    # The results exactly as Opus sent them, when asked for.
    raw = OpusGetJobResultsOperator(task_id="r3", job_execution_id=job_id, include_raw_results=True).execute(
        make_context()
    )
    assert raw["results"]["data"]["verdict"] == "PASS" and raw["output_files"] == raw["results"]["outputFiles"]


def test_both_results_shapes_give_the_same_outputs_and_files(emulator):
    job_id = completed_job()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID)
    example = op.execute(make_context())
    emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema")
    schema = op.execute(make_context())
    assert schema["results_shape"] == "schema" and example["results_shape"] == "results"
    assert schema["outputs"] == example["outputs"]
    assert schema["output_files"] == example["output_files"] != []
    assert output_value(schema, "Verdict") == output_value(schema, "verdict") == "PASS"


def test_outputs_named_by_variable_only_warn_and_name_workflow_id(emulator, capsys):
    # The older results shape names outputs by variable; without workflow_id nothing gives their display
    # names, and a downstream results.output["Verdict"] failed with Airflow's bare XComNotFound.
    job_id = completed_job()
    capsys.readouterr()
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    assert out["outputs"]["verdict"] == "PASS" and "Verdict" not in out["outputs"]
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "by variable name only" in line]
    assert "warning" in line and job_id in line and "'verdict'" in line
    assert "Give this task workflow_id=" in line and 'results.output["<display name>"]' in line
    # With workflow_id, or with results that carry display names themselves, there is nothing to warn about.
    OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID).execute(
        make_context()
    )
    emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema")
    named = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    assert named["outputs"]["Verdict"] == "PASS"
    assert "by variable name only" not in capsys.readouterr().out


def test_results_operator_refuses_unfinished_and_failed_jobs(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    with pytest.raises(OpusError, match="still IN PROGRESS: wait for it first"):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    emulator.set_job_status(job_id, "FAILED")
    with pytest.raises(OpusJobFailedError):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())


@pytest.mark.parametrize(
    ("results", "field"),
    [
        (["a"], "results is list"),
        ("done", "results is 'done', expected an object"),
        ({"outputFiles": "https://f/out.pdf"}, "results.outputFiles is 'https://f/out.pdf', expected a list"),
        (None, "neither results nor jobResultsPayloadSchema"),
    ],
)
def test_results_of_the_wrong_shape_name_the_field(emulator, results, field):
    body = {"jobExecutionId": "J", "status": "COMPLETED", "results": results}
    emulator.inject("get_job_results", {"status": 200, "json": body, "times": 2})
    with pytest.raises(OpusResponseError, match="GET /job/J/results") as info:
        OpusGetJobResultsOperator(task_id="r", job_execution_id="J").execute(make_context())
    assert field in str(info.value)
    asset = Asset("opus://invoice-review")
    event = {"status": "success", "job_execution_id": "J", "opus_status": "COMPLETED", "message": "done"}
    with pytest.raises(OpusResponseError, match="GET /job/J/results") as info:
        execute_op(outlets=[asset]).execute_complete(make_context(), event)  # the asset extras
    assert field in str(info.value)


@pytest.mark.parametrize("as_object_storage", [False, True])
def test_output_files_are_downloaded_to_a_folder(emulator, tmp_path, as_object_storage):
    job_id = completed_job()
    folder = ObjectStoragePath(f"file://{tmp_path}/out") if as_object_storage else str(tmp_path / "out")
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, download_to=folder).execute(make_context())
    written = out["downloaded_files"]
    assert len(written) == len(out["output_files"]) >= 1
    for index, path in enumerate(written, start=1):
        local = path.removeprefix("file://")
        assert os.path.basename(local) == out["output_files"][index - 1].rsplit("/", 1)[1]
        with open(local, "rb") as stream:
            assert stream.read() == expected_output_file(job_id, index)
    assert os.listdir(tmp_path / "out") == [job_id]  # a folder per job
    assert sorted(os.listdir(tmp_path / "out" / job_id)) == sorted(os.path.basename(p) for p in written)
    downloads = emulator.requests("download_output_file")
    assert downloads and not any(r["had_service_key"] for r in downloads)  # storage is not the API host


def test_a_destination_that_cannot_be_written_fails_before_any_call(emulator, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id="J", download_to=str(blocker / "out"))
    with pytest.raises(OpusInvalidArgumentError, match=r"download_to .* cannot be written"):
        op.execute(make_context())
    assert emulator.requests() == []


def test_the_key_reaches_the_file_host_only_when_the_connection_lists_it(emulator, monkeypatch, tmp_path):
    emulator.configure_file_serving(require_key=True)
    job_id = completed_job()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, download_to=str(tmp_path))
    with pytest.raises(OpusError, match="add this host to file_hosts"):
        op.execute(make_context())
    conn = {
        "conn_type": "opus",
        "host": emulator.url,
        "password": SERVICE_KEY,
        "extra": {"file_hosts": emulator.storage_url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    out = OpusGetJobResultsOperator(task_id="r2", job_execution_id=job_id, download_to=str(tmp_path)).execute(
        make_context()
    )
    assert [r["had_service_key"] for r in emulator.requests("download_output_file")] == [False, True]
    with open(out["downloaded_files"][0], "rb") as stream:
        assert stream.read() == expected_output_file(job_id)


# -- names from Opus as XCom keys, in a real task run (issue #20 items 2 and 15) ------------------------------

XCOM_DAG_FILE = textwrap.dedent(
    """
    import datetime as dt

    from airflow.sdk import DAG, task

    from airflow_provider_opus.operators.opus import OpusGetJobResultsOperator

    with DAG("opus_output_names", schedule=None, start_date=dt.datetime(2026, 1, 1)):

        @task
        def victim():
            return "ORIGINAL"

        victim() >> OpusGetJobResultsOperator(task_id="results", job_execution_id="J1", include_audit_log=False)
    """
)

RUN_XCOM_DAG = textwrap.dedent(
    """
    import json
    import sys

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    run = bag.dags["opus_output_names"].test()
    with create_session() as session:
        rows = session.scalars(select(XComModel).where(XComModel.run_id == run.run_id)).all()
        stored = {f"{row.task_id}/{row.key}": XComModel.deserialize_value(row) for row in rows}
    print("XCOMS", json.dumps(stored, sort_keys=True))
    print("STATE", run.state)
    """
)

HOSTILE_NAMES = {
    "verdict": {"value": "PASS", "type": "str", "displayName": "Verdict"},
    "notes": {"value": "public notes", "type": "str", "displayName": "Notes"},
    "hostile": {"value": "HACKED", "type": "str", "displayName": "../victim/return_value"},
    "draft": {"value": "draft verdict", "type": "str", "displayName": "Verdict?draft=1"},
    "internal": {"value": "internal notes", "type": "str", "displayName": "Notes#internal"},
    "ratio": {"value": 0.5, "type": "float", "displayName": "Ratio 50%25"},
    "skip": {"value": {"followed": []}, "type": "object", "displayName": "skipmixin_key"},
    "": {"value": 7, "type": "float"},
}


def test_names_from_opus_never_become_another_xcom_in_a_real_task_run(emulator, tmp_path):
    # Airflow's task SDK puts an XCom key into the Execution API URL unescaped (airflow/sdk/api/client.py,
    # 3.1.8 to 3.3.2): the display name "../victim/return_value" overwrote task victim's return value,
    # "Verdict?draft=1" was stored as "Verdict", and an empty name failed the task.
    body = {"jobExecutionId": "J1", "status": "COMPLETED", "jobResultsPayloadSchema": HOSTILE_NAMES}
    emulator.inject("get_job_results", {"status": 200, "json": body})
    output = run_dag_file(emulator, tmp_path, XCOM_DAG_FILE, RUN_XCOM_DAG)
    assert "STATE success" in output, output[-3000:]
    (line,) = [line for line in output.splitlines() if line.startswith("XCOMS ")]
    stored = json.loads(line.removeprefix("XCOMS "))
    assert stored["victim/return_value"] == "ORIGINAL"
    assert stored["results/Verdict"] == "PASS" and stored["results/Notes"] == "public notes"
    assert stored["results/unnamed_output_1"] == 7  # an empty name is named, not a failed task
    assert set(stored) == {
        "victim/return_value",
        "results/return_value",
        "results/Verdict",
        "results/Notes",
        "results/unnamed_output_1",
    }
    # Each name left out is still in the return value, under its own name, and the log says why.
    outputs = stored["results/return_value"]["outputs"]
    assert outputs["../victim/return_value"] == "HACKED" and outputs["Ratio 50%25"] == 0.5
    assert output_value(stored["results/return_value"], "Verdict?draft=1") == "draft verdict"
    for name in ("../victim/return_value", "Verdict?draft=1", "Notes#internal", "Ratio 50%25", "skipmixin_key"):
        assert f"Output {name!r} of Opus job J1 is not pushed as an XCom of its own" in output, name
    assert "Airflow puts an XCom key into a URL unescaped" in output
    assert "Airflow uses that key itself" in output


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("../victim/return_value", "it holds '/'"),
        ("Verdict?draft=1", "it holds '?'"),
        ("Notes#internal", "it holds '#'"),
        ("Ratio 50%25", "it holds '%'"),
        ("a\\b", "it holds '\\\\'"),
        ("..", "it holds '..'"),
        ("", "it is empty"),
        ("return_value", "Airflow uses that key itself"),
        ("skipmixin_key", "Airflow uses that key itself"),
        ("_link_OpusWorkflowLink", "Airflow uses that key itself"),
        ("x" * 513, "longer than the 512 characters"),
        ("tab\there", "control character"),
    ],
)
def test_names_that_cannot_be_an_xcom_key_say_why(key, problem):
    assert problem in (xcom_key_problem(key) or "")


@pytest.mark.parametrize("key", ["Verdict", "Reviewer Comments", "results.summary", "Café (€)", "a;b+c=d", "x" * 512])
def test_names_that_survive_the_xcom_url_are_keys(key):
    assert xcom_key_problem(key) is None


# -- output files of several tasks in one folder (issue #20 items 7 and 8) ----------------------------------


class NamedFiles(LoopbackHTTPServer):
    """Serves every path with its own bytes: the path itself, so two files of one name differ; records the paths."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve_with(Handler)


def results_of(job_id: str, files: list[str]) -> dict:
    return {"jobExecutionId": job_id, "status": "COMPLETED", "results": {"summary": "ok", "outputFiles": files}}


def test_two_tasks_downloading_to_one_folder_keep_each_others_files(emulator, tmp_path):
    # Two results tasks with the same download_to both wrote report.pdf: the second replaced the first.
    with NamedFiles() as server:
        emulator.inject("get_job_results", {"status": 200, "json": results_of("J1", [f"{server.url}/a/report.pdf"])})
        emulator.inject("get_job_results", {"status": 200, "json": results_of("J2", [f"{server.url}/b/report.pdf"])})
        emulator.inject("get_job_results", {"status": 200, "json": results_of("J1", [f"{server.url}/a/report.pdf"])})
        written = [
            OpusGetJobResultsOperator(
                task_id=task_id, job_execution_id=job_id, include_audit_log=False, download_to=str(tmp_path)
            ).execute(make_context())["downloaded_files"]
            for task_id, job_id in (("first", "J1"), ("second", "J2"), ("first_again", "J1"))
        ]
    first, second = str(tmp_path / "J1" / "report.pdf"), str(tmp_path / "J2" / "report.pdf")
    assert written == [[first], [second], [first]]  # a folder per job: the same job writes the same file
    assert (tmp_path / "J1" / "report.pdf").read_bytes() == b"/a/report.pdf"
    assert (tmp_path / "J2" / "report.pdf").read_bytes() == b"/b/report.pdf"
    assert sorted(os.listdir(tmp_path)) == ["J1", "J2"] and os.listdir(tmp_path / "J1") == ["report.pdf"]


def test_an_output_file_with_a_long_name_is_downloaded_under_a_shorter_one(emulator, tmp_path):
    long_name = "Quarterly review of " + "every invoice " * 17 + ".pdf"
    with NamedFiles() as server:
        url = f"{server.url}/{quote(long_name)}"
        emulator.inject("get_job_results", {"status": 200, "json": results_of("J1", [url])})
        out = OpusGetJobResultsOperator(
            task_id="r", job_execution_id="J1", include_audit_log=False, download_to=str(tmp_path)
        ).execute(make_context())
    (path,) = out["downloaded_files"]
    name = os.path.basename(path)
    assert len(long_name) > 240 and len(name) <= MAX_FILE_NAME_CHARS and name.endswith(".pdf")
    assert name.startswith("Quarterly_review_of_every_invoice_every_invoice")
    assert os.listdir(tmp_path / "J1") == [name]


# -- arguments and statuses (issue #20 items 9 and 14) -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_execution_id": None}, "job_execution_id must be a non-empty string, got NoneType None"),
        ({"job_execution_id": 42}, "job_execution_id must be a non-empty string, got int 42"),
        ({"workflow_id": 5}, "workflow_id must be a non-empty string or None, got int 5"),
        ({"include_audit_log": "no"}, "include_audit_log must be True or False, got 'no'"),
        ({"push_outputs": 0}, "push_outputs must be True or False, got int 0"),
        ({"failed_statuses": "REJECTED BY REVIEWER"}, "failed_statuses must be a list of status strings"),
    ],
)
def test_arguments_of_the_wrong_type_fail_when_the_dag_is_parsed(emulator, kwargs, message):
    arguments = {"task_id": "r", "job_execution_id": "J1", **kwargs}
    with pytest.raises(OpusInvalidArgumentError) as info:
        OpusGetJobResultsOperator(**arguments)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("rendered", "message"),
    [
        (None, "job_execution_id must be a non-empty string, got NoneType None"),
        (42, "job_execution_id must be a non-empty string, got int 42"),
        ("..", "job_execution_id '..' cannot be an id"),
    ],
)
def test_a_job_id_rendered_to_a_wrong_value_fails_before_any_call(emulator, tmp_path, rendered, message):
    # job_execution_id=None or 42 called GET /job/None/results; '..' reached Opus as GET /status.
    with in_dag(tmp_path, render_template_as_native_obj=True) as dag:
        op = OpusGetJobResultsOperator(task_id="r", job_execution_id="{{ params.job }}")
    context = render_task(op, dag, job=rendered)
    with pytest.raises(OpusInvalidArgumentError) as info:
        op.execute(context)
    assert message in str(info.value)
    assert emulator.requests() == []


def test_a_job_in_an_authors_own_failed_word_fails_as_failed(emulator):
    # Without failed_statuses the job was reported as "still running: wait for it first".
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, "REJECTED BY REVIEWER")
    with pytest.raises(OpusError, match="reports status 'REJECTED BY REVIEWER', which this provider does not know"):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, failed_statuses=["rejected by reviewer"])
    with pytest.raises(OpusJobFailedError, match="ended with status 'REJECTED BY REVIEWER'"):
        op.execute(make_context())
    # An author's running word, including a built-in failed word made a running one, says to wait.
    emulator.set_job_status(job_id, "ON HOLD")
    with pytest.raises(OpusError, match="still ON HOLD: wait for it first"):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, running_statuses=["on_hold"]).execute(
            make_context()
        )


# -- what is stored (issue #20 items 6 and 15) ---------------------------------------------------------------


def stored_bytes(out: dict, context: dict) -> int:
    """What a run stores in XCom: the return value and every other key the task pushed."""
    return len(json.dumps(out)) + sum(len(json.dumps(value)) for value in context["ti"].xcom.values())


def test_each_output_value_is_stored_once_in_the_return_value(emulator):
    # 2,000 outputs of a 6.1 MiB body stored 18.2 MiB: the raw results, outputs, and each output again.
    outputs = {f"out_{n}": {"value": "v" * 500, "type": "str", "displayName": f"Output {n}"} for n in range(2000)}
    outputs[""] = {"value": 1, "type": "float"}  # an empty name failed the whole task
    body = {"jobExecutionId": "J1", "status": "COMPLETED", "jobResultsPayloadSchema": outputs}
    size = len(json.dumps(body))
    emulator.inject("get_job_results", {"status": 200, "json": body}, {"status": 200, "json": body})
    lean_context = make_context()
    lean = OpusGetJobResultsOperator(task_id="r", job_execution_id="J1", push_outputs=False, include_audit_log=False)
    lean_out = lean.execute(lean_context)
    assert stored_bytes(lean_out, lean_context) < size  # each value once
    context = make_context()
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id="J1", include_audit_log=False).execute(context)
    assert stored_bytes(out, context) < 2 * size  # the return value, and each output's own XCom
    assert out["outputs"]["unnamed_output_1"] == 1 and context["ti"].xcom["unnamed_output_1"] == 1


def test_outputs_that_share_a_display_name_are_all_pushed_and_the_log_says_why(emulator, capsys):
    body = {
        "jobExecutionId": "J1",
        "status": "COMPLETED",
        "jobResultsPayloadSchema": {
            "score": {"value": 0.91, "type": "float", "displayName": "Score"},
            "quality_score": {"value": 0.12, "type": "float", "displayName": "Score"},
        },
    }
    emulator.inject("get_job_results", {"status": 200, "json": body})
    context = make_context()
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id="J1", include_audit_log=False).execute(context)
    assert context["ti"].xcom == {"score": 0.91, "quality_score": 0.12}
    assert output_value(out, "quality_score") == 0.12
    assert "2 outputs have the display name 'Score' ('score', 'quality_score')" in capsys.readouterr().out


def test_an_output_file_url_the_parsers_read_differently_is_refused_before_any_download(emulator, tmp_path):
    # "http://EVIL\@API/files/r.pdf" in outputFiles with download_to sent x-service-key to EVIL (#20 item 1).
    with NamedFiles() as evil:
        api = emulator.url.removeprefix("http://")
        url = f"{evil.url}\\@{api}/media/r.pdf"
        emulator.inject("get_job_results", {"status": 200, "json": results_of("J1", [url])})
        with pytest.raises(OpusInvalidArgumentError, match="is not a plain http") as info:
            OpusGetJobResultsOperator(
                task_id="r", job_execution_id="J1", include_audit_log=False, download_to=str(tmp_path)
            ).execute(make_context())
        assert evil.requests == []
    assert SERVICE_KEY not in str(info.value)
