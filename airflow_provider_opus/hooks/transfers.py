"""
Move files between the local disk (or object storage) and Opus for :class:`~airflow_provider_opus.hooks.opus.OpusHook`.

Uploads go to a presigned URL through a bare session that never carries the service key; downloads
send the key only to the hosts the connection allows and never through a redirect. What a file may
be is in :mod:`airflow_provider_opus.files`, where a download is written in
:mod:`airflow_provider_opus.downloads`; sending and retrying are the hook's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from airflow_provider_opus.api import (
    DOWNLOAD_FILE,
    GET_UPLOAD_URL,
    SERVICE_KEY_HEADER,
    STORAGE_PUT,
    storage_error_for_status,
    upload_urls_from,
)
from airflow_provider_opus.downloads import (
    Destination,
    as_destination,
    check_destination,
    check_download_size,
    download_error_for_status,
    raw_chunks,
    redirect_target,
    shown_url,
    write_whole,
)
from airflow_provider_opus.files import check_local_files, content_type_for, upload_url_request
from airflow_provider_opus.transport import READ_CHUNK_BYTES, requests_network, transport_error
from airflow_provider_opus.urls import checked_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests

    from airflow_provider_opus.api import Endpoint
    from airflow_provider_opus.connection import OpusConnectionSettings
    from airflow_provider_opus.retry import RetryPolicy


class OpusFileTransfers:
    """Upload input files and download output files; a part of :class:`~airflow_provider_opus.hooks.opus.OpusHook`."""

    if TYPE_CHECKING:  # what OpusHook provides
        retry_policy: RetryPolicy

        @property
        def settings(self) -> OpusConnectionSettings:
            """The hook's checked connection settings."""

        @property
        def storage_session(self) -> requests.Session:
            """The hook's bare session for storage hosts."""

        @property
        def log(self) -> Any:
            """The hook's logger (its type differs across Airflow minors)."""

        def _call(
            self, endpoint: Endpoint, path_params: Mapping[str, str] | None = None, json_body: Any = None
        ) -> Any: ...

        def _send_once(self, endpoint: Endpoint, path: str, json_body: Any = None) -> Any: ...

        def _exchange(
            self, session: requests.Session, method: str, url: str, path: str, *, upload: bool = False, **kwargs: Any
        ) -> tuple[int, bytes, str | None]: ...

    def get_upload_url(
        self,
        file_extension: str,
        access_scope: str | None = "organization",
        *,
        original_name: str | None = None,
        workspace_id: str | None = None,
    ) -> dict:
        """
        Ask for a presigned upload URL and the fileUrl that will refer to the file.

        :param file_extension: the file's extension, e.g. ``.pdf``.
        :param access_scope: who may read the file: all, user, workspace or organization; None for an
            unlisted file (today's Opus).
        :param original_name: the file's name, shown in the Opus file library.
        :param workspace_id: the workspace that owns the file (required for the ``workspace`` scope).
        :return: ``{"presignedUrl": ..., "fileUrl": ...}``, both checked to be URL strings.
        """
        request = upload_url_request(file_extension, access_scope, original_name, workspace_id)
        body = self._call(GET_UPLOAD_URL, json_body=request)
        upload_urls_from(body, GET_UPLOAD_URL.path())
        return body

    def upload_file(
        self,
        path: str | os.PathLike[str],
        access_scope: str | None = "organization",
        content_type: str | None = None,
        *,
        workspace_id: str | None = None,
    ) -> str:
        """
        Upload a local file: get a presigned URL, then stream the file to it.

        The file is checked first, its size against the connection's ``max_upload_bytes`` included.
        It is streamed from disk, never read whole into memory. The PUT goes through
        a bare session: the service key is sent to Opus only, never to the storage host.
        A retry asks Opus for a fresh presigned URL and streams the file again: a URL that
        expired (or failed) is never sent twice. The file's name goes along as ``originalName``.

        :param path: the local file.
        :param access_scope: who may read the file: all, user, workspace or organization; None for an
            unlisted file.
        :param content_type: the Content-Type to send; by default from the extension.
        :param workspace_id: the workspace that owns the file (required for the ``workspace`` scope).
        :return: the fileUrl to use as the value of a ``file`` input.
        """
        local_path = os.fspath(path)
        check_local_files([local_path], self.settings.max_upload_bytes)
        extension = os.path.splitext(local_path)[1]
        request = upload_url_request(extension, access_scope, os.path.basename(local_path), workspace_id)
        headers = {"Content-Type": content_type or content_type_for(extension)}

        def upload_once() -> str:
            # One unit for the retry policy: a fresh presigned URL, then the whole file to it.
            urls = self._send_once(GET_UPLOAD_URL, GET_UPLOAD_URL.path(), request)
            presigned_url, file_url = upload_urls_from(urls, GET_UPLOAD_URL.path())
            storage_path = urlsplit(presigned_url).path  # no query: it holds the signature
            with open(local_path, "rb") as stream:
                self._put_stream(presigned_url, storage_path, stream, headers)
            return file_url

        file_url = self.retry_policy.call(STORAGE_PUT, f"upload of {local_path}", upload_once)
        self.log.info("Uploaded %s (%d bytes) to %s", local_path, os.path.getsize(local_path), file_url)
        return file_url

    def _put_stream(self, url: str, path: str, stream: BinaryIO, headers: Mapping[str, str]) -> None:
        status, body, retry_after = self._exchange(
            self.storage_session, STORAGE_PUT.method, url, path, upload=True, data=stream, headers=dict(headers)
        )
        if not 200 <= status < 300:
            raise storage_error_for_status(path, status, body, retry_after)

    def download_file(self, url: str, destination: str | os.PathLike[str] | Destination) -> Destination:
        """
        Download an output file to a local path or an ``ObjectStoragePath``, streamed in chunks.

        The service key goes with the request only when ``url`` is on the API's host or one of the
        connection's ``file_hosts``; redirects are followed without it. The file is written under a
        temporary name and renamed when whole (:mod:`airflow_provider_opus.downloads`); a failed
        attempt leaves nothing, and transient failures are retried from the start.

        :param url: the file's URL, e.g. one of a job's ``output_files``.
        :param destination: the file to write: a path, a URL such as ``s3://bucket/key``, or an
            ``ObjectStoragePath``. Its folder is created and checked writable before the download.
        :return: the path written, as a ``Path`` or ``ObjectStoragePath``.
        """
        url = checked_url(url, "url")
        target = as_destination(destination)
        check_destination(target)
        shown = shown_url(url)
        size = self.retry_policy.call(DOWNLOAD_FILE, f"download of {shown}", lambda: self._download_once(url, target))
        self.log.info("Downloaded %s (%d bytes) to %s", shown, size, target)
        return target

    def _download_once(self, url: str, target: Destination) -> int:
        import requests
        from urllib3.exceptions import HTTPError

        settings = self.settings
        key_sent = settings.may_send_key_to(url)
        # The bytes as stored: a .gz served with Content-Encoding: gzip stays a .gz (nor can a gzip bomb inflate).
        headers = {"Accept-Encoding": "identity"}
        if key_sent:
            headers[SERVICE_KEY_HEADER] = settings.service_key
        hops = 0
        while True:
            path = shown_url(url)
            try:
                # No total deadline: a large file takes its time; each read waits at most the timeout.
                with self.storage_session.get(
                    url,
                    headers=headers,
                    timeout=(settings.connect_timeout, settings.timeout),
                    allow_redirects=False,  # followed below, without the key
                    stream=True,
                    **requests_network(settings, url),
                ) as response:
                    if response.is_redirect:
                        url = redirect_target(url, response.headers.get("Location"), hops)
                        headers, key_sent = {"Accept-Encoding": "identity"}, False
                        hops += 1
                        continue
                    if not 200 <= response.status_code < 300:
                        body = response.raw.read(READ_CHUNK_BYTES, decode_content=False) or b""
                        raise download_error_for_status(
                            path,
                            response.status_code,
                            body,
                            response.headers.get("Retry-After"),
                            key_sent=key_sent,
                            redirected=hops > 0,
                        )
                    limit = settings.max_download_bytes
                    check_download_size(path, response.headers.get("Content-Length"), limit)
                    return write_whole(target, raw_chunks(path, response.raw, limit))
            except (requests.RequestException, HTTPError) as exc:  # urllib3's own errors come from raw reads
                raise transport_error("GET", path, exc, settings.timeout) from None
