"""The request log and the queued faults: a part of :class:`~airflow_provider_opus.emulator.state.EmulatorState`."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.faults import Fault, check_endpoint, parse_faults
from airflow_provider_opus.emulator.state_base import StateBase

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

REQUEST_LOG_LIMIT = 100_000


class RequestLog(StateBase):
    """Every request on both listeners, and the faults queued per endpoint; methods take the state's lock."""

    def _init_traffic(self) -> None:
        """Start with an empty log and no faults."""
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._faults: dict[str, deque[Fault]] = {}

    def log_request(
        self,
        listener: str,
        endpoint: str | None,
        method: str,
        path: str,
        had_service_key: bool,
        client_port: int | None = None,
    ) -> dict[str, Any]:
        """
        Append a request to the log before it is handled.

        :param client_port: the client's TCP port: requests that share one came over one connection.
        :return: the entry, to pass to :meth:`update_request` once the response starts.
        """
        entry = {
            "listener": listener,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "client_port": client_port,
            "status": None,
            "had_service_key": had_service_key,
            "time": time.time(),
            "fault": None,
        }
        with self._lock:
            self._log.append(entry)
        return entry

    def update_request(self, entry: dict[str, Any], **changes: Any) -> None:
        """Fill in what became known while handling a logged request (``status``, ``fault``)."""
        with self._lock:
            entry.update(changes)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """
        Return the logged requests.

        :param endpoint: only requests to this endpoint name; None for all.
        :return: copies of the logged requests, oldest first.
        """
        with self._lock:
            return [dict(entry) for entry in self._log if endpoint is None or entry["endpoint"] == endpoint]

    def inject(self, endpoint: str, faults: Iterable[Mapping[str, Any]]) -> int:
        """
        Queue faults for an endpoint; each matching request consumes the next one.

        :return: the number of faults now queued for the endpoint.
        :raises BadRequest: for an unknown endpoint or an invalid fault (nothing is queued then).
        """
        check_endpoint(endpoint)
        parsed = [fault for spec in faults for fault in parse_faults(spec)]
        with self._lock:
            queue = self._faults.setdefault(endpoint, deque())
            queue.extend(parsed)
            return len(queue)

    def take_fault(self, endpoint: str | None) -> Fault | None:
        """Pop the next fault queued for ``endpoint``, if any."""
        with self._lock:
            queue = self._faults.get(endpoint) if endpoint else None
            return queue.popleft() if queue else None

    def clear_faults(self, endpoint: str | None = None) -> None:
        """
        Drop the queued faults of one endpoint, or of all when ``endpoint`` is None.

        :raises BadRequest: for an unknown endpoint.
        """
        if endpoint is not None:
            check_endpoint(endpoint)
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)
