"""What the sync and the async hook share: the connection type and the retry settings."""

from __future__ import annotations

from airflow.sdk import BaseHook

from airflow_provider_opus.retry import RetryPolicy


class OpusBaseHook(BaseHook):
    """
    Hold what both Opus hooks share: the connection type and the retry settings.

    :param opus_conn_id: the Airflow connection of type ``opus``.
    :param timeout: seconds a whole call may take, answer included; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call where retrying is safe.
    :param retry_delay: base delay between retries in seconds.
    """

    conn_name_attr = "opus_conn_id"
    default_conn_name = "opus_default"
    conn_type = "opus"
    hook_name = "Opus"

    def __init__(
        self,
        opus_conn_id: str = default_conn_name,
        timeout: float | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__()
        self.opus_conn_id = opus_conn_id
        self.timeout = timeout
        self.retry_policy = RetryPolicy(retry_limit=retry_limit, retry_delay=retry_delay)
