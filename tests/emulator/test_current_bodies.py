"""current_bodies.py and current_app.py: the current generation's strict bodies, required callbackUrl and new fields."""

from __future__ import annotations

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, GRAPH_WORKFLOW_ID
from tests.emulator.helpers import REQUIRED_INPUTS, Api

pytestmark = pytest.mark.integration

VALID_EXECUTE = {"jobPayloadSchemaInstance": REQUIRED_INPUTS, "callbackUrl": "http://127.0.0.1:9/cb"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/job/initiate", {"workflowId": DEFAULT_WORKFLOW_ID, "callbackUrl": "http://127.0.0.1/cb", "extra": 1}),
        ("/job/file/upload", {"fileExtension": ".pdf", "callbackUrl": "http://127.0.0.1/cb", "extra": 1}),
        ("/job/execute", {"jobExecutionId": "x", **VALID_EXECUTE, "callbackUrlx": "x", "extra": 1}),
    ],
)
def test_unknown_body_keys_are_a_400_with_a_list_of_messages(capi, current, path, body):
    response = capi.post(path, body)
    assert response.status_code == 400
    unknown = [key for key in body if key in ("callbackUrl", "callbackUrlx", "extra")]
    if path == "/job/execute":
        unknown = ["callbackUrlx", "extra"]
    assert response.json() == {"message": [f"property {key} should not exist" for key in unknown]}
    assert current.jobs() == [] and current.uploads() == []


def test_legacy_ignores_unknown_body_keys(emulator):
    api = Api(emulator)
    body = {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d", "source": "x", "extra": 1}
    job_id = api.post("/job/initiate", body).json()["jobExecutionId"]
    upload = {"fileExtension": ".pdf", "accessScope": "organization", "originalName": "a.pdf"}
    assert api.post("/job/file/upload", upload).status_code == 200
    assert api.post("/job/execute", {"jobExecutionId": job_id, **VALID_EXECUTE}).status_code == 201


@pytest.mark.parametrize(
    "fields",
    [
        {},
        *({"callbackUrl": url} for url in ("", "   ", None, "example.com/cb", "ftp://127.0.0.1/cb", 8080, "http://")),
    ],
)
def test_execute_requires_a_callback_url(capi, current, fields):
    job_id = capi.initiate()
    body = {"jobExecutionId": job_id, "jobPayloadSchemaInstance": REQUIRED_INPUTS, **fields}
    response = capi.post("/job/execute", body)
    assert (response.status_code, response.json()) == (400, {"message": ["callbackUrl must be a URL address"]})
    assert current.jobs()[0]["status"] == "NOT STARTED"


def test_execute_lists_every_problem_at_once(capi):
    response = capi.post("/job/execute", {"jobPayloadSchemaInstance": [], "workspaces": 3, "nope": True})
    assert response.json()["message"] == [
        "property nope should not exist",
        "jobExecutionId should not be empty",
        "jobPayloadSchemaInstance must be an object",
        "callbackUrl must be a URL address",
        "workspaces must be a string",
    ]


def test_execute_answers_without_echoing_the_instance_and_remembers_the_callback(capi, current):
    job_id = capi.initiate()
    response = capi.execute(job_id, REQUIRED_INPUTS, workspaces="ws-1,ws-2", callbackUrl="https://example.com/cb")
    assert response.status_code == 201
    assert response.json() == {"success": True, "jobExecutionId": job_id, "message": "Job execution has been started"}
    (job,) = current.jobs()
    assert job["callbackUrl"] == "https://example.com/cb" and job["status"] == "IN PROGRESS"
    again = capi.execute(job_id, REQUIRED_INPUTS)
    assert again.status_code == 409 and "already been executed" in again.json()["message"]


def test_initiate_takes_the_documented_fields_and_needs_no_title(capi, current):
    fields = {
        "refUserId": "user-7",
        "source": "scheduled",
        "workspaces": "ws-1",
        "initialInput": {"note": "from the scheduler"},
        "webAppId": "app-1",
    }
    job_id = capi.initiate(**fields)
    plain = capi.initiate(title="Nightly", description="")
    jobs = {job["jobExecutionId"]: job for job in current.jobs()}
    assert {key: jobs[job_id][key] for key in fields} == fields
    assert (jobs[job_id]["title"], jobs[job_id]["description"]) == ("", "")
    assert (jobs[plain]["source"], jobs[plain]["title"]) == ("api", "Nightly")  # the default source


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "workflowId should not be empty (or give referenceEntityId)"),
        ({"workflowId": ""}, "workflowId should not be empty (or give referenceEntityId)"),
        ({"workflowId": 5}, "workflowId must be a string"),
        ({"workflowId": "W", "source": "cron"}, "source must be one of the following values: email-agent, chat-agent"),
        ({"workflowId": "W", "workspaces": ["a"]}, "workspaces must be a string"),
        ({"workflowId": "W", "initialInput": "x"}, "initialInput must be an object"),
        ({"workflowId": "W", "title": 1}, "title must be a string"),
        ({"workflowId": "W", "refUserId": 1}, "refUserId must be a string"),
        ({"workflowId": "W", "webAppId": 1}, "webAppId must be a string"),
        ({"workflowId": "W", "workflowVersionNumber": 0}, "workflowVersionNumber must be a positive integer"),
        ({"workflowId": "W", "workflowVersionNumber": "2"}, "workflowVersionNumber must be a positive integer"),
        ({"workflowId": "W", "workflowVersionId": "v2"}, "workflowVersionId must be a UUID"),
        ({"referenceEntityId": "abc"}, "referenceEntityId must be a UUID"),
    ],
)
def test_initiate_refuses_bad_fields(capi, current, body, message):
    response = capi.post("/job/initiate", body)
    assert response.status_code == 400
    (problem,) = response.json()["message"]
    assert problem.startswith(message)
    assert current.jobs() == []


def test_initiate_by_reference_entity_which_wins_over_the_workflow_id(capi, current):
    body = {"workflowId": DEFAULT_WORKFLOW_ID, "referenceEntityId": GRAPH_WORKFLOW_ID.upper()}
    capi.post("/job/initiate", body)
    assert current.jobs()[0]["workflowId"] == GRAPH_WORKFLOW_ID
    unknown = capi.post("/job/initiate", {"referenceEntityId": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 404 and "reference entity" in unknown.json()["message"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(capi, body):
    response = capi.session.post(f"{capi.emulator.url}/job/initiate", data=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["message"] in (["request body is not valid JSON"], ["request body must be a JSON object"])


def test_upload_url_records_the_name_scope_and_owner(capi, current):
    unlisted = capi.upload_url(".PDF", originalName="Invoice 7.pdf").json()
    owned = capi.upload_url("csv", "workspace", workspaceId="ws-1").json()
    by_workflow = capi.upload_url("csv", "workspace", workflowId=DEFAULT_WORKFLOW_ID).json()
    uploads = {upload["fileUrl"]: upload for upload in current.uploads()}
    assert {key: uploads[unlisted["fileUrl"]][key] for key in ("accessScope", "originalName", "maxBytes")} == {
        "accessScope": None,
        "originalName": "Invoice 7.pdf",
        "maxBytes": 10_485_760,
    }
    assert (uploads[owned["fileUrl"]]["workspaceId"], uploads[owned["fileUrl"]]["accessScope"]) == ("ws-1", "workspace")
    assert uploads[by_workflow["fileUrl"]]["workflowId"] == DEFAULT_WORKFLOW_ID


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"accessScope": "workspace"}, "workspaceId or workflowId is required when accessScope is workspace"),
        ({"accessScope": "workspace", "workspaceId": ""}, "workspaceId or workflowId is required"),
        ({"accessScope": "public"}, "accessScope must be one of the following values: all, user, workspace"),
        ({"fileExtension": "exe"}, "fileExtension must be one of the following values: jpeg, png"),
        ({"fileExtension": None}, "fileExtension should not be empty"),
        ({"fileExtension": 7}, "fileExtension must be a string"),
        ({"originalName": 7}, "originalName must be a string"),
    ],
)
def test_upload_url_refuses_bad_fields_and_a_workspace_file_without_owner(capi, current, body, message):
    response = capi.post("/job/file/upload", {"fileExtension": ".pdf", **body})
    assert response.status_code == 400
    (problem,) = response.json()["message"]
    assert problem.startswith(message)
    assert current.uploads() == []
