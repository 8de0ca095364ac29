"""Typed readers for decoded ARI JSON: strict about types, lenient about absence.

They raise :class:`MalformedJson`; :func:`unico.ari.models.parse_event` turns that into an
``UnknownEvent`` so a bad frame never reaches a call handler as an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

__all__ = [
    "Json",
    "MalformedJson",
    "get_bool",
    "get_int",
    "get_obj",
    "get_opt_obj",
    "get_req_str",
    "get_str",
    "get_str_tuple",
]

Json: TypeAlias = Mapping[str, Any]


class MalformedJson(ValueError):
    """A modelled ARI object lacks a required field or has a field of the wrong type."""


def get_obj(data: Json, key: str) -> Json:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise MalformedJson(f"{key!r} must be an object")
    return value


def get_opt_obj(data: Json, key: str) -> Json | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedJson(f"{key!r} must be an object")
    return value


def get_str(data: Json, key: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedJson(f"{key!r} must be a string")


def get_req_str(data: Json, key: str) -> str:
    value = get_str(data, key)
    if not value:
        raise MalformedJson(f"{key!r} is required")
    return value


def get_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedJson(f"{key!r} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise MalformedJson(f"{key!r} must be an integer") from None
    raise MalformedJson(f"{key!r} must be an integer")


def get_bool(data: Json, key: str) -> bool:
    value = data.get(key, False)
    if isinstance(value, bool):
        return value
    raise MalformedJson(f"{key!r} must be a boolean")


def get_str_tuple(data: Json, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedJson(f"{key!r} must be a list of strings")
    return tuple(value)
