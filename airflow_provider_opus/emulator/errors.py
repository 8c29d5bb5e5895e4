"""Errors raised by the emulator state; the apps turn them into ``{"message": ...}`` responses."""

from __future__ import annotations


class EmulatorError(Exception):
    """
    A request the emulator rejects.

    :param message: the ``message`` of the JSON error response.
    """

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(EmulatorError, ValueError):
    """400: the request (or a helper's argument) is invalid."""

    status_code = 400


class Forbidden(EmulatorError):
    """403: an unknown, expired or wrongly signed upload URL."""

    status_code = 403


class NotFound(EmulatorError, LookupError):
    """404: an unknown workflow or job."""

    status_code = 404


class Conflict(EmulatorError):
    """409: the job was already executed."""

    status_code = 409


class InvalidBody(BadRequest):
    """
    400 of the current generation for a body that breaks its rules: ``{"message": [...]}``, a list, as NestJS answers.

    :param messages: one message per problem, e.g. ``"callbackUrl must be a URL address"``.
    """

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
