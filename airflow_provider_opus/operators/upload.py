"""Upload local files to Opus for a job's file inputs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, describe_value
from airflow_provider_opus.files import check_access_scope, check_local_files
from airflow_provider_opus.operators.base import OpusBaseOperator, rendered_later

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class OpusUploadOperator(OpusBaseOperator):
    """
    Upload local files to Opus and return their fileUrls, for ``file`` and ``array_files`` inputs.

    Every file is checked (exists, readable, not empty, a type Opus accepts, no larger than the
    connection's ``max_upload_bytes``) before the first upload. Files are streamed, never read whole
    into memory; each goes with its name (``originalName``, shown in the Opus file library).

    :param files: one path or a list of paths (templated).
    :param access_scope: who may read the files: ``all``, ``user``, ``workspace`` or ``organization``;
        None leaves them unlisted (today's Opus).
    :param workspace_id: the workspace that owns the files (templated; required for ``workspace``).
    :return: the fileUrl (str) for one path, a list of fileUrls for a list.

    Takes the connection and retry arguments of :class:`~airflow_provider_opus.operators.base.OpusBaseOperator`.
    """

    template_fields = (*OpusBaseOperator.template_fields, "files", "workspace_id")

    def __init__(
        self,
        *,
        files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        access_scope: str | None = "organization",
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_access_scope(access_scope, workspace_id)
        # A list may hold templates or XComArgs rendered later: its items are checked at execute.
        if not rendered_later(files) and not isinstance(files, (list, tuple)):
            _upload_paths(files, self.task_id)
        self.files = files
        self.access_scope = access_scope
        self.workspace_id = workspace_id

    def execute(self, context: Context) -> str | list[str]:
        """Upload the files."""
        paths, single = _upload_paths(self.files, self.task_id)
        check_access_scope(self.access_scope, self.workspace_id)
        check_local_files(paths, self.hook.settings.max_upload_bytes)
        # Lineage: the local files are read, the uploaded copies (their fileUrls) produced.
        self.lineage_facts.add_inputs(paths)
        file_urls = [self.hook.upload_file(path, self.access_scope, workspace_id=self.workspace_id) for path in paths]
        self.lineage_facts.output_files = file_urls
        return file_urls[0] if single else file_urls


def _upload_paths(files: Any, task_id: str) -> tuple[list[str], bool]:
    """Return the paths the ``files`` argument names, and whether it is one path rather than a list."""
    task = f"Task {task_id!r}: "
    if isinstance(files, (str, os.PathLike)):
        return [os.fspath(files)], True
    if not isinstance(files, (list, tuple)):
        raise OpusInvalidArgumentError(f"{task}files must be a path or a list of paths, got {describe_value(files)}")
    for index, path in enumerate(files):
        if not isinstance(path, (str, os.PathLike)):
            raise OpusInvalidArgumentError(f"{task}files[{index}] must be a path, got {describe_value(path)}")
    if not files:
        raise OpusInvalidArgumentError(f"{task}files is empty: give one path or a list of paths to upload")
    return [os.fspath(path) for path in files], False
