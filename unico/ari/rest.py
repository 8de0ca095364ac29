"""Typed async client for the ARI REST operations an IVR and an ACD need (Asterisk 22).

Design rules (docs/ari-client.md, ari.md §1 and §3):

* **One** ``ClientSession`` with HTTP Basic auth in a default header: credentials never go in a
  URL (``api_key=`` would leak the password into URLs and logs).
* ``TCPConnector(limit=20, keepalive_timeout=8)``: Asterisk closes idle HTTP sessions after
  ``session_keep_alive`` = 15 s and aiohttp's default keep-alive is also 15 s, so a request can be
  written on a socket the server is closing (aio-libs/aiohttp#2682, #9138). Keeping our idle
  timeout shorter avoids most of it; an idempotent ``GET`` that still hits it is retried once.
  ``limit=20`` stays well under ``http.conf sessionlimit`` (100 by default).
* Every object we create gets an id **we** generate (:func:`new_id`), because the events caused
  by a request can arrive before its HTTP response (ari.md §1.2.1).
* Path segments are percent-quoted one by one (``PJSIP/1001`` -> ``PJSIP%2F1001``): ARI splits
  the path before decoding each segment, but ``yarl`` would keep a raw ``/``.
* Non-2xx answers raise the :mod:`unico.ari.errors` tree. For cleanup, 404 means "already gone":
  wrap such calls in :func:`gone_ok`.

Example::

    async with AriRest("http://127.0.0.1:8088", "unico", password, timeout=4.0) as rest:
        await rest.answer(channel_id)
        await rest.play(channel_id, new_id("pb"), ["sound:hello-world"], lang="it")
        with gone_ok():
            await rest.hangup(channel_id)
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from ._json import Json, MalformedJson
from .errors import (
    AriBadArgument,
    AriFenced,
    AriNotConnected,
    AriNotFound,
    AriRemoteError,
    AriTimeout,
    remote_error_for,
)
from .models import (
    Application,
    AsteriskInfo,
    AsteriskPing,
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    LiveRecording,
    Playback,
    StoredRecording,
)

__all__ = ["AriRest", "GoneOk", "basic_auth_header", "gone_ok", "new_id", "normalize_base_url"]

log = logging.getLogger(__name__)

_Scalar: TypeAlias = str | int | float | bool | None
_Params: TypeAlias = list[tuple[str, str]]
_Expect: TypeAlias = Literal["json", "none", "bytes"]
_T = TypeVar("_T")


def new_id(prefix: str) -> str:
    """A fresh object id for channels, playbacks, recordings, bridges and snoops.

    >>> new_id("pb").startswith("pb-")
    True
    """
    return f"{prefix}-{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex


def basic_auth_header(user: str, password: str) -> str:
    """``Authorization`` header value for HTTP Basic (RFC 7617): the user may not contain ``:``."""
    if not user or ":" in user:
        raise AriBadArgument("ARI user must be non-empty and must not contain ':'")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def normalize_base_url(base_url: str) -> URL:
    """``http://host:8088`` or ``http://host:8088/ari`` -> ``URL('http://host:8088/ari')``.

    URLs that carry credentials are refused (the message does not echo the URL).
    """
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise AriBadArgument("ARI base URL must be http(s)://host[:port][/ari]")
    if url.user is not None or url.password is not None:
        raise AriBadArgument("ARI base URL must not carry credentials; pass user and password")
    if url.query_string or url.fragment:
        raise AriBadArgument("ARI base URL must not have a query or fragment")
    if not url.path.endswith("/ari"):
        url = url.with_path(url.path.rstrip("/") + "/ari")
    return url


def _segment(value: str, what: str) -> str:
    if not value:
        raise AriBadArgument(f"{what} must not be empty")
    return quote(value, safe="")


def _value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _params(pairs: Iterable[tuple[str, _Scalar]]) -> _Params:
    return [(key, _value(value)) for key, value in pairs if value is not None]


def _csv(values: str | Sequence[str]) -> str:
    return values if isinstance(values, str) else ",".join(values)


def _as_obj(data: Any) -> Json:
    if not isinstance(data, Mapping):
        raise MalformedJson("expected a JSON object")
    return data


def _as_list(data: Any) -> list[Json]:
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise MalformedJson("expected a JSON list of objects")
    return data


class GoneOk:
    """Context manager that treats :class:`AriNotFound` as success; ``gone`` tells if it was."""

    __slots__ = ("gone",)

    def __init__(self) -> None:
        self.gone = False

    def __enter__(self) -> GoneOk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, AriNotFound):
            self.gone = True
            log.debug("already gone: %s %s", exc.method, exc.path)
            return True
        return False


def gone_ok() -> GoneOk:
    """Swallow 404 for cleanup calls (hangup, stop_playback, destroy_bridge ...).

    A 404 during cleanup is a race with a hangup, not a failure (ari.md §1.2.3)::

        with gone_ok() as g:
            await rest.stop_playback(playback_id)
        if g.gone:
            ...   # it had already finished
    """
    return GoneOk()


class AriRest:
    """ARI REST client. Create inside the event loop; close with ``await rest.close()``.

    ``timeout`` is the total time allowed per request (seconds); on expiry :class:`AriTimeout`.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 5.0,
        connector_limit: int = 20,
        keepalive_timeout: float = 8.0,
    ) -> None:
        if timeout <= 0:
            raise AriBadArgument("timeout must be positive")
        self._base = normalize_base_url(base_url)
        self._user = user
        self._auth_header = basic_auth_header(user, password)
        self._timeout = timeout
        self._limit = connector_limit
        self._keepalive = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        #: when set, a request is sent only while it returns True (``unico.lease``): otherwise
        #: ``AriFenced``, and nothing reaches Asterisk
        self.fence: Callable[[], bool] | None = None
        #: requests sent, by method (``/health``; the fault tests check none went out fenced)
        self.sent: dict[str, int] = {}
        self.fenced = 0

    def __repr__(self) -> str:
        return f"AriRest(base_url={str(self._base)!r}, user={self._user!r}, password='****')"

    @property
    def base_url(self) -> URL:
        return self._base

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> AriRest:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise AriNotConnected("ARI client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"Authorization": self._auth_header},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    # --- transport ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        segments: Sequence[str],
        params: _Params | None = None,
        body: Mapping[str, Any] | None = None,
        expect: _Expect = "none",
    ) -> Any:
        path = "/" + "/".join(segments)
        if self.fence is not None and not self.fence():
            self.fenced += 1
            raise AriFenced(f"{method} {path}: not sent, this controller does not hold its app's lease")
        url = URL(str(self._base) + path, encoded=True)
        session = self._get_session()
        self.sent[method] = self.sent.get(method, 0) + 1
        # Only idempotent reads are retried: a POST that hit a closing keep-alive socket may
        # or may not have reached Asterisk.
        attempts = 2 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                async with session.request(method, url, params=params, json=body) as resp:
                    data = await resp.read()
                    elapsed_ms = (time.monotonic() - started) * 1000
                    log.debug("ARI %s %s -> %d (%.1f ms)", method, path, resp.status, elapsed_ms)
                    return _decode(resp.status, resp.reason, data, method, path, expect)
            except TimeoutError:
                log.debug("ARI %s %s -> timeout after %g s", method, path, self._timeout)
                raise AriTimeout(method, path, self._timeout) from None
            except aiohttp.ServerDisconnectedError as exc:
                if attempt < attempts:
                    log.debug("ARI %s %s: server closed keep-alive socket, retrying", method, path)
                    continue
                raise AriNotConnected(f"{method} {path}: server disconnected") from exc
            except aiohttp.ClientError as exc:
                raise AriNotConnected(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _obj(
        self,
        parse: Callable[[Json], _T],
        method: str,
        segments: Sequence[str],
        params: _Params | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _T:
        """Call and parse a JSON object answer into a model (malformed -> AriRemoteError)."""
        data = await self._call(method, segments, params, body, expect="json")
        try:
            return parse(_as_obj(data))
        except MalformedJson as exc:
            raise AriRemoteError(200, method, "/" + "/".join(segments), str(exc)) from None

    async def _list(self, parse: Callable[[Json], _T], segments: Sequence[str]) -> list[_T]:
        data = await self._call("GET", segments, expect="json")
        try:
            return [parse(item) for item in _as_list(data)]
        except MalformedJson as exc:
            raise AriRemoteError(200, "GET", "/" + "/".join(segments), str(exc)) from None

    # --- asterisk / applications / endpoints ------------------------------------------------

    async def ping(self) -> AsteriskPing:
        """``GET /asterisk/ping``: cheap liveness probe of ARI itself."""
        return await self._obj(AsteriskPing.from_json, "GET", ("asterisk", "ping"))

    async def info(self) -> AsteriskInfo:
        return await self._obj(AsteriskInfo.from_json, "GET", ("asterisk", "info"))

    async def get_application(self, app: str) -> Application:
        return await self._obj(Application.from_json, "GET", ("applications", _segment(app, "app")))

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """Subscribe ``app`` to e.g. ``endpoint:PJSIP/1001`` or ``deviceState:PJSIP/1001``."""
        segs = ("applications", _segment(app, "app"), "subscription")
        params = _params([("eventSource", _csv(event_source))])
        return await self._obj(Application.from_json, "POST", segs, params)

    async def unsubscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        segs = ("applications", _segment(app, "app"), "subscription")
        params = _params([("eventSource", _csv(event_source))])
        return await self._obj(Application.from_json, "DELETE", segs, params)

    async def set_event_filter(
        self, app: str, *, allowed: Iterable[str] = (), disallowed: Iterable[str] = ()
    ) -> Application:
        """``PUT /applications/{app}/eventFilter``: Asterisk sends ``app`` only the ``allowed``
        event types (all when empty) that are not ``disallowed``; it drops the others before the
        websocket. ``set_event_filter(app)`` removes the filter."""
        body = {
            "allowed": [{"type": t} for t in sorted(set(allowed))],
            "disallowed": [{"type": t} for t in sorted(set(disallowed))],
        }
        segs = ("applications", _segment(app, "app"), "eventFilter")
        return await self._obj(Application.from_json, "PUT", segs, body=body)

    async def list_endpoints(self, technology: str) -> list[Endpoint]:
        """``GET /endpoints/PJSIP``: every endpoint of one technology with its state, in one request."""
        return await self._list(Endpoint.from_json, ("endpoints", _segment(technology, "technology")))

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        """``GET /endpoints/PJSIP/1001`` -> state online|offline|unknown and its channel ids."""
        segs = ("endpoints", _segment(technology, "technology"), _segment(resource, "resource"))
        return await self._obj(Endpoint.from_json, "GET", segs)

    async def get_device_state(self, device: str) -> DeviceState:
        """``GET /deviceStates/PJSIP%2F1001`` (any device, not only ``Stasis:`` ones)."""
        segs = ("deviceStates", _segment(device, "device"))
        return await self._obj(DeviceState.from_json, "GET", segs)

    # --- channels ---------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        return await self._list(Channel.from_json, ("channels",))

    async def get_channel(self, channel_id: str) -> Channel:
        segs = ("channels", _segment(channel_id, "channel_id"))
        return await self._obj(Channel.from_json, "GET", segs)

    async def answer(self, channel_id: str) -> None:
        await self._call("POST", ("channels", _segment(channel_id, "channel_id"), "answer"))

    async def ring(self, channel_id: str) -> None:
        """Ringback to a caller that is not answered yet (queued, not done: ari.md §1.2.2)."""
        await self._call("POST", ("channels", _segment(channel_id, "channel_id"), "ring"))

    async def ring_stop(self, channel_id: str) -> None:
        await self._call("DELETE", ("channels", _segment(channel_id, "channel_id"), "ring"))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """``reason``: normal, busy, congestion, no_answer, answered_elsewhere, ..."""
        params = _params([("reason", reason)])
        await self._call("DELETE", ("channels", _segment(channel_id, "channel_id")), params)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Leave Stasis. Produces StasisEnd, not a hangup."""
        params = _params([("context", context), ("extension", extension), ("priority", priority), ("label", label)])
        segs = ("channels", _segment(channel_id, "channel_id"), "continue")
        await self._call("POST", segs, params)

    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        *,
        app: str,
        app_args: Sequence[str] = (),
        caller_id: str | None = None,
        ring_timeout: int | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Call ``endpoint`` (``PJSIP/1001``) into ``app``. StasisStart arrives only on answer.

        Always pass ``ring_timeout`` (ARI ``timeout``: seconds to ring, Asterisk default 30) and
        ``originator`` (the caller's channel id, for linkedid and codecs).
        """
        params = _params(
            [
                ("endpoint", endpoint),
                ("app", app),
                ("appArgs", ",".join(app_args) if app_args else None),
                ("callerId", caller_id),
                ("timeout", ring_timeout),
                ("originator", originator),
            ]
        )
        body = {"variables": dict(variables)} if variables else None
        segs = ("channels", _segment(channel_id, "channel_id"))
        return await self._obj(Channel.from_json, "POST", segs, params, body)

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        app: str,
        spy: str = "none",
        whisper: str = "none",
        app_args: Sequence[str] = (),
    ) -> Channel:
        """Snoop channel (spy/whisper: none|in|out|both); it enters Stasis with a StasisStart."""
        params = _params(
            [
                ("app", app),
                ("spy", spy),
                ("whisper", whisper),
                ("appArgs", ",".join(app_args) if app_args else None),
            ]
        )
        segs = ("channels", _segment(channel_id, "channel_id"), "snoop", _segment(snoop_id, "id"))
        return await self._obj(Channel.from_json, "POST", segs, params)

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        between_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        params = _params([("dtmf", dtmf), ("between", between_ms), ("duration", duration_ms)])
        segs = ("channels", _segment(channel_id, "channel_id"), "dtmf")
        await self._call("POST", segs, params)

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        params = _params([("variable", variable), ("value", value)])
        segs = ("channels", _segment(channel_id, "channel_id"), "variable")
        await self._call("POST", segs, params)

    async def get_variable(self, channel_id: str, variable: str) -> str:
        """Raises :class:`AriNotFound` if the channel or the variable does not exist."""
        params = _params([("variable", variable)])
        segs = ("channels", _segment(channel_id, "channel_id"), "variable")
        return await self._obj(_variable_value, "GET", segs, params)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        params = _params([("mohClass", moh_class)])
        segs = ("channels", _segment(channel_id, "channel_id"), "moh")
        await self._call("POST", segs, params)

    async def stop_moh(self, channel_id: str) -> None:
        await self._call("DELETE", ("channels", _segment(channel_id, "channel_id"), "moh"))

    # --- media ------------------------------------------------------------------------------

    async def play(
        self,
        channel_id: str,
        playback_id: str,
        media: Sequence[str],
        *,
        lang: str | None = None,
    ) -> Playback:
        """Queue ``media`` (``sound:``, ``recording:``, ``digits:`` ...) as one playback.

        Several URIs are sent as one comma-separated ``media`` value and play back to back.
        """
        segs = ("channels", _segment(channel_id, "channel_id"), "play")
        return await self._play(segs, playback_id, media, lang)

    async def play_on_bridge(
        self,
        bridge_id: str,
        playback_id: str,
        media: Sequence[str],
        *,
        lang: str | None = None,
    ) -> Playback:
        """Play to every member of a bridge (Asterisk adds an Announcer channel)."""
        segs = ("bridges", _segment(bridge_id, "bridge_id"), "play")
        return await self._play(segs, playback_id, media, lang)

    async def _play(self, segs: tuple[str, ...], playback_id: str, media: Sequence[str], lang: str | None) -> Playback:
        if isinstance(media, str) or not media or not all(media):
            raise AriBadArgument("media must be a non-empty list of non-empty URIs")
        if any("," in uri for uri in media):
            raise AriBadArgument("a media URI cannot contain ','")
        # ARI takes a list as ONE comma-separated value; repeated ``media`` parameters are not
        # joined (Asterisk 22.10.1 plays only the last one).
        params = _params([("media", ",".join(media)), ("lang", lang)])
        path = (*segs, _segment(playback_id, "playback_id"))
        return await self._obj(Playback.from_json, "POST", path, params)

    async def stop_playback(self, playback_id: str) -> None:
        """Barge-in: stop a playing or queued playback."""
        await self._call("DELETE", ("playbacks", _segment(playback_id, "playback_id")))

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        max_silence: int | None = None,
        beep: bool = False,
        terminate_on: str = "none",
        if_exists: str = "fail",
    ) -> LiveRecording:
        """Record what the channel *sends* (``name`` is a flat path segment; 409 if bridged)."""
        if not name:
            raise AriBadArgument("recording name must not be empty")
        params = _params(
            [
                ("name", name),
                ("format", format),
                ("maxDurationSeconds", max_duration),
                ("maxSilenceSeconds", max_silence),
                ("beep", beep),
                ("terminateOn", terminate_on),
                ("ifExists", if_exists),
            ]
        )
        segs = ("channels", _segment(channel_id, "channel_id"), "record")
        return await self._obj(LiveRecording.from_json, "POST", segs, params)

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        if_exists: str = "fail",
    ) -> LiveRecording:
        """Record the bridge's mix (Asterisk adds a ``Recorder`` channel to it until the end)."""
        if not name:
            raise AriBadArgument("recording name must not be empty")
        params = _params(
            [("name", name), ("format", format), ("maxDurationSeconds", max_duration), ("ifExists", if_exists)]
        )
        segs = ("bridges", _segment(bridge_id, "bridge_id"), "record")
        return await self._obj(LiveRecording.from_json, "POST", segs, params)

    async def stop_recording(self, name: str) -> None:
        """Stop and store the recording (RecordingFinished follows)."""
        segs = ("recordings", "live", _segment(name, "name"), "stop")
        await self._call("POST", segs)

    async def cancel_recording(self, name: str) -> None:
        """Stop and discard the recording."""
        await self._call("DELETE", ("recordings", "live", _segment(name, "name")))

    async def get_stored_recording(self, name: str) -> StoredRecording:
        segs = ("recordings", "stored", _segment(name, "name"))
        return await self._obj(StoredRecording.from_json, "GET", segs)

    async def get_stored_recording_file(self, name: str) -> bytes:
        segs = ("recordings", "stored", _segment(name, "name"), "file")
        data: bytes = await self._call("GET", segs, expect="bytes")
        return data

    async def delete_stored_recording(self, name: str) -> None:
        await self._call("DELETE", ("recordings", "stored", _segment(name, "name")))

    # --- bridges ----------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, type: str = "mixing", name: str | None = None) -> Bridge:
        """``type``: comma list, e.g. ``mixing,dtmf_events`` (no native bridging: DTMF flows)."""
        params = _params([("type", type), ("name", name)])
        segs = ("bridges", _segment(bridge_id, "bridge_id"))
        return await self._obj(Bridge.from_json, "POST", segs, params)

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._obj(Bridge.from_json, "GET", ("bridges", _segment(bridge_id, "bridge_id")))

    async def list_bridges(self) -> list[Bridge]:
        return await self._list(Bridge.from_json, ("bridges",))

    async def add_channel(
        self,
        bridge_id: str,
        channel: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
    ) -> None:
        """Add one or more channels. 422/400 if a channel left Stasis; 409 while recording."""
        params = _params([("channel", _csv(channel)), ("role", role), ("absorbDTMF", absorb_dtmf), ("mute", mute)])
        segs = ("bridges", _segment(bridge_id, "bridge_id"), "addChannel")
        await self._call("POST", segs, params)

    async def remove_channel(self, bridge_id: str, channel: str | Sequence[str]) -> None:
        params = _params([("channel", _csv(channel))])
        segs = ("bridges", _segment(bridge_id, "bridge_id"), "removeChannel")
        await self._call("POST", segs, params)

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Stasis bridges are never destroyed automatically: always call this."""
        await self._call("DELETE", ("bridges", _segment(bridge_id, "bridge_id")))

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        params = _params([("mohClass", moh_class)])
        await self._call("POST", ("bridges", _segment(bridge_id, "bridge_id"), "moh"), params)

    async def stop_bridge_moh(self, bridge_id: str) -> None:
        await self._call("DELETE", ("bridges", _segment(bridge_id, "bridge_id"), "moh"))


def _decode(status: int, reason: str | None, data: bytes, method: str, path: str, expect: _Expect) -> Any:
    if not 200 <= status < 300:
        raise remote_error_for(status, method, path, _error_message(data, reason))
    if expect == "bytes":
        return data
    if expect == "none" or not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise AriRemoteError(status, method, path, "response is not JSON") from None


def _variable_value(data: Json) -> str:
    value = data.get("value")
    if not isinstance(value, str):
        raise MalformedJson("'value' must be a string")
    return value


def _error_message(body: bytes, reason: str | None) -> str:
    """The ``message`` of Asterisk's JSON error body, else a short excerpt, else the reason."""
    text = body.decode("utf-8", errors="replace").strip()
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, Mapping) and isinstance(data.get("message"), str):
            return str(data["message"])
        return text[:200]
    return reason or ""
