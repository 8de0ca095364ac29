"""The ARI client's error tree: one base, two families.

::

    AriError                      anything this package raises on purpose
    ├── AriLocalError             our side: the request never got an answer from Asterisk
    │   ├── AriNotConnected       client closed, connection refused or dropped
    │   ├── AriTimeout            no answer within the per-request timeout
    │   ├── AriFenced             not sent: this controller does not hold the app's lease
    │   └── AriBadArgument        the call was invalid before anything was sent
    └── AriRemoteError            Asterisk answered and said no (status, method, path, message)
        ├── AriBadRequest         400  bad or missing parameters
        ├── AriUnauthorized       401  wrong ARI user or password (also 403)
        ├── AriNotFound           404  object gone, usually a race with a hangup: treat as normal
        ├── AriConflict           409  channel not in Stasis, bridge not Stasis, or id already used
        ├── AriInvalidState       412  channel in the wrong state for the operation
        ├── AriUnprocessable      422  channel not in Stasis (bridges) or unknown format
        └── AriServerError        5xx

The meaning of each status comes from the Asterisk 22 ``rest-api/api-docs/*.json`` error
responses (see docs/ari-client.md). Messages never contain credentials: only the method, the
URL path (no query, no host) and the ``message`` field of Asterisk's JSON error body.

Example::

    try:
        await rest.add_channel(bridge_id, agent_leg)
    except AriUnprocessable:        # the caller hung up while the agent answered (ari.md §1.2.4)
        await rest.hangup(agent_leg)
"""

from __future__ import annotations

__all__ = [
    "AriBadArgument",
    "AriBadRequest",
    "AriConflict",
    "AriError",
    "AriFenced",
    "AriInvalidState",
    "AriLocalError",
    "AriNotConnected",
    "AriNotFound",
    "AriRemoteError",
    "AriServerError",
    "AriTimeout",
    "AriUnauthorized",
    "AriUnprocessable",
    "remote_error_for",
]


class AriError(Exception):
    """Base of every error the ARI client raises on purpose."""


class AriLocalError(AriError):
    """Our side failed: the request did not get an answer from Asterisk."""


class AriNotConnected(AriLocalError):
    """The client is closed, or Asterisk could not be reached / dropped the connection."""


class AriFenced(AriLocalError):
    """Not sent: this controller lost (or never had) the lease on its ARI app (``unico.lease``),
    so another controller may be commanding the calls."""


class AriTimeout(AriLocalError):
    """No answer within the request timeout. The operation may or may not have happened."""

    def __init__(self, method: str, path: str, timeout: float) -> None:
        super().__init__(f"{method} {path}: no answer within {timeout:g} s")
        self.method = method
        self.path = path
        self.timeout = timeout


class AriBadArgument(AriLocalError, ValueError):
    """The call was rejected before anything was sent (empty id, empty media list, ...)."""


class AriRemoteError(AriError):
    """Asterisk answered with a non-2xx status.

    ``status`` is the HTTP status, ``method`` and ``path`` the request (path without query),
    ``message`` the ``message`` field of the JSON error body (or a short text excerpt).
    """

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message


class AriBadRequest(AriRemoteError):
    """400: invalid or missing parameters (also ``addChannel`` of a channel already gone)."""


class AriUnauthorized(AriRemoteError):
    """401/403: the ARI user or password is wrong, or the ACL refuses us."""


class AriNotFound(AriRemoteError):
    """404: the object does not exist (any more). For cleanup calls this is success."""


class AriConflict(AriRemoteError):
    """409: channel not in Stasis, bridge not a Stasis bridge, channel recording, or id clash."""


class AriInvalidState(AriRemoteError):
    """412: the channel is in a state that does not allow the operation."""


class AriUnprocessable(AriRemoteError):
    """422: the channel is not in Stasis (bridge operations) or the format is unknown."""


class AriServerError(AriRemoteError):
    """5xx: Asterisk failed internally or is shutting down."""


_BY_STATUS: dict[int, type[AriRemoteError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    403: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    412: AriInvalidState,
    422: AriUnprocessable,
}


def remote_error_for(status: int, method: str, path: str, message: str) -> AriRemoteError:
    """Build the most specific :class:`AriRemoteError` subclass for an HTTP status.

    >>> type(remote_error_for(404, "DELETE", "/channels/c1", "Channel not found")).__name__
    'AriNotFound'
    """
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriRemoteError
    return cls(status, method, path, message)
