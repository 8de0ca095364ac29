"""ARI JSON parsed once, at the boundary, into frozen keyword-only dataclasses.

Only the fields the IVR and the ACD use are kept (Asterisk 22 ``api-docs/events.json`` and the
resource models). Every ARI event carries a full channel snapshot; we keep it as :class:`Channel`.

:func:`parse_event` never raises: an event type we do not model becomes :class:`UnknownEvent`
(normal: ``ChannelVarset``, ``PlaybackContinuing`` ...), and a modelled type with missing or
mistyped fields becomes an :class:`UnknownEvent` with ``error`` set (and a warning in the log).

:func:`channel_key` says which call an event belongs to, so the dispatcher can keep per-call
order (ari.md §1.2.3: per object, events arrive in order; across objects they do not).

Example::

    event = parse_event(json.loads(frame))
    match event:
        case ChannelDtmfReceived(digit=digit):
            ...
    key = channel_key(event)        # "1700000000.42", "bridge:acd-q-sales" or None
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from ._json import (
    Json,
    MalformedJson,
    get_bool,
    get_int,
    get_obj,
    get_opt_obj,
    get_req_str,
    get_str,
    get_str_tuple,
)

__all__ = [
    "Application",
    "ApplicationReplaced",
    "AriEvent",
    "AsteriskInfo",
    "AsteriskPing",
    "Bridge",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelHangupRequest",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "Connected",
    "DeviceState",
    "DeviceStateChanged",
    "Dial",
    "Disconnected",
    "Endpoint",
    "EndpointStateChange",
    "Event",
    "LiveRecording",
    "MalformedJson",
    "Playback",
    "PlaybackFinished",
    "PlaybackStarted",
    "RecordingFailed",
    "RecordingFinished",
    "RecordingStarted",
    "StasisEnd",
    "StasisStart",
    "StoredRecording",
    "UnknownEvent",
    "channel_key",
    "parse_event",
    "target_key",
]

log = logging.getLogger(__name__)


def target_key(target_uri: str) -> str | None:
    """Routing key of a playback/recording target: ``channel:<id>`` -> ``<id>``.

    ``bridge:<id>`` -> ``"bridge:<id>"`` (bridges are routed under their own prefixed key),
    anything else (``endpoint:``, ``deviceState:``, empty) -> ``None``.
    """
    kind, sep, ident = target_uri.partition(":")
    if not sep or not ident:
        return None
    if kind == "channel":
        return ident
    if kind == "bridge":
        return target_uri
    return None


# --- resource snapshots -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Channel:
    """Channel snapshot as carried by every channel event and returned by ``GET /channels``."""

    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    caller_name: str = ""
    connected_number: str = ""
    connected_name: str = ""
    dialplan_context: str = ""
    dialplan_exten: str = ""
    dialplan_priority: int | None = None
    dialplan_app_name: str = ""
    dialplan_app_data: str = ""
    language: str = ""
    creationtime: str = ""
    #: ``channelvars`` from ari.conf or ``report_events`` (22.10+); usually empty.
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)

    def is_in_app(self, app: str) -> bool:
        """True if the channel sits in ``Stasis(<app>,...)`` (used to reconcile after reconnect)."""
        return self.dialplan_app_name == "Stasis" and self.dialplan_app_data.split(",", 1)[0].strip() == app

    @classmethod
    def from_json(cls, data: Json) -> Channel:
        caller = get_opt_obj(data, "caller") or {}
        connected = get_opt_obj(data, "connected") or {}
        dialplan = get_opt_obj(data, "dialplan") or {}
        raw_vars = get_opt_obj(data, "channelvars") or {}
        return cls(
            id=get_req_str(data, "id"),
            name=get_str(data, "name"),
            state=get_str(data, "state"),
            caller_number=get_str(caller, "number"),
            caller_name=get_str(caller, "name"),
            connected_number=get_str(connected, "number"),
            connected_name=get_str(connected, "name"),
            dialplan_context=get_str(dialplan, "context"),
            dialplan_exten=get_str(dialplan, "exten"),
            dialplan_priority=get_int(dialplan, "priority"),
            dialplan_app_name=get_str(dialplan, "app_name"),
            dialplan_app_data=get_str(dialplan, "app_data"),
            language=get_str(data, "language"),
            creationtime=get_str(data, "creationtime"),
            variables={str(k): get_str(raw_vars, k) for k in raw_vars},
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Bridge:
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    name: str = ""
    creator: str = ""
    channels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Bridge:
        return cls(
            id=get_req_str(data, "id"),
            technology=get_str(data, "technology"),
            bridge_type=get_str(data, "bridge_type"),
            bridge_class=get_str(data, "bridge_class"),
            name=get_str(data, "name"),
            creator=get_str(data, "creator"),
            channels=get_str_tuple(data, "channels"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Playback:
    """``state``: queued, playing, continuing, done, or failed (missing/broken file, 20.0+)."""

    id: str
    target_uri: str = ""
    media_uri: str = ""
    state: str = ""
    language: str = ""

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @classmethod
    def from_json(cls, data: Json) -> Playback:
        return cls(
            id=get_req_str(data, "id"),
            target_uri=get_str(data, "target_uri"),
            media_uri=get_str(data, "media_uri"),
            state=get_str(data, "state"),
            language=get_str(data, "language"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveRecording:
    """``state``: queued, recording, paused, done, failed, canceled. Durations in seconds."""

    name: str
    target_uri: str = ""
    format: str = ""
    state: str = ""
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str = ""

    @classmethod
    def from_json(cls, data: Json) -> LiveRecording:
        return cls(
            name=get_req_str(data, "name"),
            target_uri=get_str(data, "target_uri"),
            format=get_str(data, "format"),
            state=get_str(data, "state"),
            duration=get_int(data, "duration"),
            talking_duration=get_int(data, "talking_duration"),
            silence_duration=get_int(data, "silence_duration"),
            cause=get_str(data, "cause"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredRecording:
    name: str
    format: str = ""

    @classmethod
    def from_json(cls, data: Json) -> StoredRecording:
        return cls(name=get_req_str(data, "name"), format=get_str(data, "format"))


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoint:
    """``state``: unknown, offline, online (driven by PJSIP qualify / registration)."""

    technology: str
    resource: str
    state: str = ""
    channel_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Endpoint:
        return cls(
            technology=get_req_str(data, "technology"),
            resource=get_req_str(data, "resource"),
            state=get_str(data, "state"),
            channel_ids=get_str_tuple(data, "channel_ids"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceState:
    """``state``: UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE ..."""

    name: str
    state: str = ""

    @classmethod
    def from_json(cls, data: Json) -> DeviceState:
        return cls(name=get_req_str(data, "name"), state=get_str(data, "state"))


@dataclass(frozen=True, kw_only=True, slots=True)
class Application:
    name: str
    channel_ids: tuple[str, ...] = ()
    bridge_ids: tuple[str, ...] = ()
    endpoint_ids: tuple[str, ...] = ()
    device_names: tuple[str, ...] = ()
    #: the app's event type filter (``PUT /applications/{app}/eventFilter``); empty: no filter
    events_allowed: tuple[str, ...] = ()
    events_disallowed: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Application:
        return cls(
            name=get_req_str(data, "name"),
            channel_ids=get_str_tuple(data, "channel_ids"),
            bridge_ids=get_str_tuple(data, "bridge_ids"),
            endpoint_ids=get_str_tuple(data, "endpoint_ids"),
            device_names=get_str_tuple(data, "device_names"),
            events_allowed=_event_types(data, "events_allowed"),
            events_disallowed=_event_types(data, "events_disallowed"),
        )


def _event_types(data: Json, key: str) -> tuple[str, ...]:
    """``[{"type": "StasisStart"}, ...]`` -> ``("StasisStart", ...)`` (absent before Asterisk 16)."""
    items = data.get(key)
    if not isinstance(items, list):
        return ()
    return tuple(str(item["type"]) for item in items if isinstance(item, dict) and isinstance(item.get("type"), str))


@dataclass(frozen=True, kw_only=True, slots=True)
class AsteriskPing:
    asterisk_id: str = ""
    ping: str = ""
    timestamp: str = ""

    @classmethod
    def from_json(cls, data: Json) -> AsteriskPing:
        return cls(
            asterisk_id=get_str(data, "asterisk_id"),
            ping=get_str(data, "ping"),
            timestamp=get_str(data, "timestamp"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AsteriskInfo:
    version: str = ""
    entity_id: str = ""
    startup_time: str = ""
    last_reload_time: str = ""

    @classmethod
    def from_json(cls, data: Json) -> AsteriskInfo:
        system = get_opt_obj(data, "system") or {}
        status = get_opt_obj(data, "status") or {}
        return cls(
            version=get_str(system, "version"),
            entity_id=get_str(system, "entity_id"),
            startup_time=get_str(status, "startup_time"),
            last_reload_time=get_str(status, "last_reload_time"),
        )


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AriEvent:
    """Fields common to every event Asterisk sends."""

    TYPE: ClassVar[str] = ""
    application: str = ""
    timestamp: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StasisStart(AriEvent):
    """The channel entered our app. ``replace_channel``: a swapped channel (e.g. blind transfer)."""

    TYPE: ClassVar[str] = "StasisStart"
    channel: Channel
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StasisEnd(AriEvent):
    """We lost control of the channel (hangup, continue, move). Not the same as a hangup."""

    TYPE: ClassVar[str] = "StasisEnd"
    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelDtmfReceived(AriEvent):
    """Sent at the *end* of a digit."""

    TYPE: ClassVar[str] = "ChannelDtmfReceived"
    channel: Channel
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelHangupRequest(AriEvent):
    TYPE: ClassVar[str] = "ChannelHangupRequest"
    channel: Channel
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelDestroyed(AriEvent):
    """Final event of a channel. ``cause`` is the Q.850 cause (16 normal, 17 busy, 19 no answer)."""

    TYPE: ClassVar[str] = "ChannelDestroyed"
    channel: Channel
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelStateChange(AriEvent):
    TYPE: ClassVar[str] = "ChannelStateChange"
    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelEnteredBridge(AriEvent):
    TYPE: ClassVar[str] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None  # optional in the 22.x swagger


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelLeftBridge(AriEvent):
    TYPE: ClassVar[str] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackStarted(AriEvent):
    TYPE: ClassVar[str] = "PlaybackStarted"
    playback: Playback


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackFinished(AriEvent):
    """``playback.state == "failed"`` marks a missing or broken file."""

    TYPE: ClassVar[str] = "PlaybackFinished"
    playback: Playback


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingStarted(AriEvent):
    TYPE: ClassVar[str] = "RecordingStarted"
    recording: LiveRecording


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingFinished(AriEvent):
    TYPE: ClassVar[str] = "RecordingFinished"
    recording: LiveRecording


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingFailed(AriEvent):
    TYPE: ClassVar[str] = "RecordingFailed"
    recording: LiveRecording


@dataclass(frozen=True, kw_only=True, slots=True)
class Dial(AriEvent):
    """Dial progress of ``peer``. A final NOANSWER is not guaranteed: also run our own timer."""

    TYPE: ClassVar[str] = "Dial"
    peer: Channel
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointStateChange(AriEvent):
    TYPE: ClassVar[str] = "EndpointStateChange"
    endpoint: Endpoint


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceStateChanged(AriEvent):
    TYPE: ClassVar[str] = "DeviceStateChanged"
    device_state: DeviceState


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplicationReplaced(AriEvent):
    """Another websocket took our app name: this socket receives no more events."""

    TYPE: ClassVar[str] = "ApplicationReplaced"


@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownEvent(AriEvent):
    """An event type we do not model (``error`` empty) or a malformed one (``error`` set)."""

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)
    error: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Connected:
    """Synthetic: the event socket is (re)connected. On ``reconnect`` events may have been lost."""

    reconnect: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Disconnected:
    """Synthetic: the event socket was lost; a reconnect with backoff follows."""

    reason: str


Event: TypeAlias = (
    StasisStart
    | StasisEnd
    | ChannelDtmfReceived
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelStateChange
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | PlaybackStarted
    | PlaybackFinished
    | RecordingStarted
    | RecordingFinished
    | RecordingFailed
    | Dial
    | EndpointStateChange
    | DeviceStateChanged
    | ApplicationReplaced
    | UnknownEvent
    | Connected
    | Disconnected
)


# --- parsing ----------------------------------------------------------------------------------

_Parser: TypeAlias = Callable[[Json, str, str], Event]


def _stasis_start(d: Json, app: str, ts: str) -> Event:
    replace = get_opt_obj(d, "replace_channel")
    return StasisStart(
        application=app,
        timestamp=ts,
        channel=Channel.from_json(get_obj(d, "channel")),
        args=get_str_tuple(d, "args"),
        replace_channel=Channel.from_json(replace) if replace is not None else None,
    )


def _dtmf(d: Json, app: str, ts: str) -> Event:
    return ChannelDtmfReceived(
        application=app,
        timestamp=ts,
        channel=Channel.from_json(get_obj(d, "channel")),
        digit=get_req_str(d, "digit"),
        duration_ms=get_int(d, "duration_ms") or 0,
    )


def _hangup_request(d: Json, app: str, ts: str) -> Event:
    return ChannelHangupRequest(
        application=app,
        timestamp=ts,
        channel=Channel.from_json(get_obj(d, "channel")),
        cause=get_int(d, "cause"),
        soft=get_bool(d, "soft"),
    )


def _destroyed(d: Json, app: str, ts: str) -> Event:
    return ChannelDestroyed(
        application=app,
        timestamp=ts,
        channel=Channel.from_json(get_obj(d, "channel")),
        cause=get_int(d, "cause") or 0,
        cause_txt=get_str(d, "cause_txt"),
    )


def _entered_bridge(d: Json, app: str, ts: str) -> Event:
    chan = get_opt_obj(d, "channel")
    return ChannelEnteredBridge(
        application=app,
        timestamp=ts,
        bridge=Bridge.from_json(get_obj(d, "bridge")),
        channel=Channel.from_json(chan) if chan is not None else None,
    )


def _left_bridge(d: Json, app: str, ts: str) -> Event:
    return ChannelLeftBridge(
        application=app,
        timestamp=ts,
        bridge=Bridge.from_json(get_obj(d, "bridge")),
        channel=Channel.from_json(get_obj(d, "channel")),
    )


def _dial(d: Json, app: str, ts: str) -> Event:
    caller = get_opt_obj(d, "caller")
    return Dial(
        application=app,
        timestamp=ts,
        peer=Channel.from_json(get_obj(d, "peer")),
        caller=Channel.from_json(caller) if caller is not None else None,
        dialstatus=get_str(d, "dialstatus"),
        dialstring=get_str(d, "dialstring"),
    )


def _channel_only(
    cls: type[StasisEnd] | type[ChannelStateChange],
) -> _Parser:
    def parse(d: Json, app: str, ts: str) -> Event:
        return cls(application=app, timestamp=ts, channel=Channel.from_json(get_obj(d, "channel")))

    return parse


def _playback(cls: type[PlaybackStarted] | type[PlaybackFinished]) -> _Parser:
    def parse(d: Json, app: str, ts: str) -> Event:
        return cls(application=app, timestamp=ts, playback=Playback.from_json(get_obj(d, "playback")))

    return parse


def _recording(
    cls: type[RecordingStarted] | type[RecordingFinished] | type[RecordingFailed],
) -> _Parser:
    def parse(d: Json, app: str, ts: str) -> Event:
        recording = LiveRecording.from_json(get_obj(d, "recording"))
        return cls(application=app, timestamp=ts, recording=recording)

    return parse


def _endpoint_state(d: Json, app: str, ts: str) -> Event:
    endpoint = Endpoint.from_json(get_obj(d, "endpoint"))
    return EndpointStateChange(application=app, timestamp=ts, endpoint=endpoint)


def _device_state(d: Json, app: str, ts: str) -> Event:
    state = DeviceState.from_json(get_obj(d, "device_state"))
    return DeviceStateChanged(application=app, timestamp=ts, device_state=state)


def _replaced(d: Json, app: str, ts: str) -> Event:
    return ApplicationReplaced(application=app, timestamp=ts)


_PARSERS: dict[str, _Parser] = {
    "StasisStart": _stasis_start,
    "StasisEnd": _channel_only(StasisEnd),
    "ChannelDtmfReceived": _dtmf,
    "ChannelHangupRequest": _hangup_request,
    "ChannelDestroyed": _destroyed,
    "ChannelStateChange": _channel_only(ChannelStateChange),
    "ChannelEnteredBridge": _entered_bridge,
    "ChannelLeftBridge": _left_bridge,
    "PlaybackStarted": _playback(PlaybackStarted),
    "PlaybackFinished": _playback(PlaybackFinished),
    "RecordingStarted": _recording(RecordingStarted),
    "RecordingFinished": _recording(RecordingFinished),
    "RecordingFailed": _recording(RecordingFailed),
    "Dial": _dial,
    "EndpointStateChange": _endpoint_state,
    "DeviceStateChanged": _device_state,
    "ApplicationReplaced": _replaced,
}

#: the event types this client models; the rest arrive as :class:`UnknownEvent` and no handler
#: uses them, so the controller asks Asterisk not to send them (``AriRest.set_event_filter``)
MODELLED_EVENTS: frozenset[str] = frozenset(_PARSERS)


def parse_event(raw: object) -> Event:
    """Turn one decoded websocket frame into an :data:`Event`. Never raises.

    >>> parse_event({"type": "ChannelVarset", "variable": "X"}).type
    'ChannelVarset'
    """
    if not isinstance(raw, Mapping):
        log.warning("ARI event is not a JSON object: %s", type(raw).__name__)
        return UnknownEvent(type="", raw={}, error="not a JSON object")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not event_type:
        log.warning("ARI event without a type")
        return UnknownEvent(type="", raw=raw, error="missing type")
    application = raw.get("application")
    timestamp = raw.get("timestamp")
    app = application if isinstance(application, str) else ""
    ts = timestamp if isinstance(timestamp, str) else ""
    parser = _PARSERS.get(event_type)
    if parser is None:
        return UnknownEvent(type=event_type, raw=raw, application=app, timestamp=ts)
    try:
        return parser(raw, app, ts)
    except (MalformedJson, TypeError, ValueError, AttributeError) as exc:
        log.warning("malformed ARI %s event: %s", event_type, exc)
        return UnknownEvent(type=event_type, raw=raw, application=app, timestamp=ts, error=str(exc))


def _raw_key(raw: Mapping[str, Any]) -> str | None:
    """Best-effort routing key of an unmodelled event (``ChannelVarset``, ``ChannelHold`` ...)."""
    for name in ("channel", "peer"):
        obj = raw.get(name)
        if isinstance(obj, Mapping) and isinstance(obj.get("id"), str) and obj["id"]:
            return str(obj["id"])
    for name in ("playback", "recording"):
        obj = raw.get(name)
        if isinstance(obj, Mapping) and isinstance(obj.get("target_uri"), str):
            return target_key(str(obj["target_uri"]))
    return None


def channel_key(event: Event) -> str | None:
    """The call an event belongs to: a channel id, ``"bridge:<id>"``, or ``None`` (control).

    Playback and recording events are keyed by their ``target_uri`` (``channel:<id>``), so a
    PlaybackFinished lands in the same ordered stream as the DTMF of that channel.
    """
    if isinstance(
        event,
        StasisStart
        | StasisEnd
        | ChannelDtmfReceived
        | ChannelHangupRequest
        | ChannelDestroyed
        | ChannelStateChange
        | ChannelLeftBridge,
    ):
        return event.channel.id
    if isinstance(event, ChannelEnteredBridge):
        return event.channel.id if event.channel is not None else None
    if isinstance(event, PlaybackStarted | PlaybackFinished):
        return target_key(event.playback.target_uri)
    if isinstance(event, RecordingStarted | RecordingFinished | RecordingFailed):
        return target_key(event.recording.target_uri)
    if isinstance(event, Dial):
        return event.peer.id
    if isinstance(event, UnknownEvent):
        return _raw_key(event.raw)
    return None
