"""The API's errors: one exception for handlers, one JSON shape on the wire, one mapping table.

Every error answer is ``{"error": "<what went wrong, in words>"}`` (some add fields, e.g. the
plan's ``problems``). Handlers raise :class:`ApiError` for what they decide themselves; the error
families of the libraries below are mapped to a status in :func:`translate`, in one place:

===========================================  ======  =========================================
raised                                        status  meaning
===========================================  ======  =========================================
``pydantic.ValidationError``                  400     bad body or query (every field named)
``contacts.ComplaintError`` and the users'    400     a value the store refuses
``UnknownAgent``, ``UnknownComplaint``,       404     no such thing
``UnknownUser``
``IllegalTransition`` (agents, complaints),   409     not possible in the current state
``UserExists``, ``UserDisabled``
``SQLAlchemyError``, ``OSError``              503     the database is unreachable
``redis.RedisError``                          503     the ACD's Redis is unreachable
===========================================  ======  =========================================
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from acd.agents import IllegalTransition as AgentIllegalTransition
from contacts import ComplaintError, IllegalTransition, UnknownComplaint
from contacts.users import UnknownUser, UserDisabled, UserError, UserExists
from unico.acd_service import UnknownAgent

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Answer ``status`` with ``{"error": message, **extra}``; raised by handlers and helpers."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        return error_response(self.status, self.message, **self.extra)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def invalid(exc: ValidationError) -> ApiError:
    """400 naming every invalid field: ``"limit: Input should be ...; by: Field required"``."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        # our own validators already name the field ("reason must be one of: ...")
        problems.append(message if message.startswith(f"{where} ") else f"{where}: {message}")
    return ApiError(400, "; ".join(problems))


def translate(exc: Exception, where: str) -> ApiError | None:
    """The :class:`ApiError` for one of the library errors in the module docstring, else None."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return invalid(exc)
    if isinstance(exc, UnknownAgent):
        return ApiError(404, f"no operator {exc.args[0]!r}" if exc.args else "no such operator")
    if isinstance(exc, UnknownComplaint | UnknownUser):
        return ApiError(404, str(exc))
    if isinstance(exc, AgentIllegalTransition | IllegalTransition | UserExists | UserDisabled):
        return ApiError(409, str(exc))
    if isinstance(exc, ComplaintError | UserError):
        return ApiError(400, str(exc))
    if isinstance(exc, SQLAlchemyError | OSError):
        # the message may hold the database URL: only the type goes to the log
        log.error("API %s: database unavailable: %s", where, type(exc).__name__)
        return ApiError(503, "the database is unavailable; try again")
    if isinstance(exc, RedisError):
        log.error("API %s: Redis unavailable: %s", where, type(exc).__name__)
        return ApiError(503, "the ACD's Redis is unavailable; try again")
    return None
