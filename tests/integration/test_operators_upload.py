"""operators/upload.py: OpusUploadOperator against the emulator, over real loopback HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.operators.upload import OpusUploadOperator
from tests.integration.helpers import in_dag, render_task
from tests.support.task_context import make_context

pytestmark = pytest.mark.integration


def test_upload_one_and_many(emulator, tmp_path):
    a, b = tmp_path / "a.pdf", tmp_path / "b.png"
    a.write_bytes(b"%PDF")
    b.write_bytes(b"\x89PNG")
    single = OpusUploadOperator(task_id="u1", files=str(a)).execute(make_context())
    many = OpusUploadOperator(task_id="u2", files=[str(a), str(b)]).execute(make_context())
    assert isinstance(single, str) and single.endswith(".pdf")
    assert isinstance(many, list) and [u.rsplit(".", 1)[1] for u in many] == ["pdf", "png"]
    assert all(put["had_service_key"] is False for put in emulator.requests("storage_put"))


def test_upload_checks_every_file_before_the_first_request(emulator, tmp_path):
    good, empty = tmp_path / "good.pdf", tmp_path / "empty.pdf"
    good.write_bytes(b"%PDF")
    empty.write_bytes(b"")
    bad = tmp_path / "script.sh"
    bad.write_text("echo")
    op = OpusUploadOperator(task_id="u", files=[str(good), str(empty), str(bad), str(tmp_path)])
    with pytest.raises(OpusInvalidArgumentError) as info:
        op.execute(make_context())
    text = str(info.value)
    assert "empty.pdf' is empty" in text and "'.sh'" in text and "is a directory" in text
    assert emulator.requests("get_upload_url") == []


def test_upload_files_must_be_paths_when_parsed_and_when_rendered(emulator, tmp_path):
    for files, shown in ((None, "NoneType None"), (5, "int 5"), ({"a.pdf"}, "set {'a.pdf'}")):
        with pytest.raises(
            OpusInvalidArgumentError, match=rf"^Task 'u': files must be a path or a list of paths, got {shown}$"
        ):
            OpusUploadOperator(task_id="u", files=files)
    good = tmp_path / "a.pdf"
    good.write_bytes(b"%PDF")
    for rendered, message in (
        (None, "files must be a path or a list of paths, got NoneType None"),
        ([str(good), 5], r"files\[1\] must be a path, got int 5"),
    ):
        with in_dag(tmp_path, render_template_as_native_obj=True) as dag:
            op = OpusUploadOperator(task_id="u", files="{{ params.files }}")
        context = render_task(op, dag, files=rendered)
        with pytest.raises(OpusInvalidArgumentError, match=rf"^Task 'u': {message}$"):
            op.execute(context)
    assert emulator.requests() == []


def test_a_json_file_is_uploaded_as_it_is_not_loaded_as_a_template(emulator, tmp_path):
    # .json is a file type Opus accepts; only the execute operator's payload instance is a template file.
    orders = tmp_path / "orders.json"
    orders.write_text('{"orders": "{{ ds }}"}')
    with in_dag(tmp_path) as dag:
        op = OpusUploadOperator(task_id="u", files=[str(orders), "{{ params.folder }}/orders.json"])
    file_urls = op.execute(render_task(op, dag, folder=str(tmp_path)))
    assert [url.rsplit(".", 1)[1] for url in file_urls] == ["json", "json"]
    assert [upload["size"] for upload in emulator.uploads()] == [orders.stat().st_size] * 2
