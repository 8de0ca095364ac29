"""parse_event / channel_key: the boundary where ARI JSON becomes typed events."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from unico.ari import (
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    Connected,
    DeviceStateChanged,
    Dial,
    Disconnected,
    EndpointStateChange,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    channel_key,
    parse_event,
)

from .fake_ari import channel_json, event


def test_given_stasis_start_json_when_parsed_then_typed_event_with_snapshot() -> None:
    raw = event(
        "StasisStart",
        args=["inbound", "100"],
        channel=channel_json("c1", channelvars={"UNICO_CALL": "k1"}),
        replace_channel=channel_json("old"),
    )

    parsed = parse_event(raw)

    assert isinstance(parsed, StasisStart)
    assert parsed.args == ("inbound", "100")
    assert parsed.application == "unico"
    chan = parsed.channel
    assert (chan.id, chan.state, chan.caller_number, chan.caller_name) == (
        "c1",
        "Ring",
        "0612345678",
        "Mario Rossi",
    )
    assert (chan.dialplan_context, chan.dialplan_exten, chan.dialplan_priority) == ("from-trunk", "100", 2)
    assert chan.dialplan_app_name == "Stasis" and chan.is_in_app("unico")
    assert not chan.is_in_app("other")
    assert chan.language == "it" and chan.variables == {"UNICO_CALL": "k1"}
    assert parsed.replace_channel is not None and parsed.replace_channel.id == "old"
    assert channel_key(parsed) == "c1"


def test_given_events_when_parsed_then_frozen_and_keyword_only() -> None:
    parsed = parse_event(event("StasisEnd", channel=channel_json("c1")))

    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.channel = None  # type: ignore[misc, union-attr]
    with pytest.raises(TypeError):
        Connected(True)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "cls", "key"),
    [
        (event("StasisEnd", channel=channel_json("c1")), StasisEnd, "c1"),
        (
            event("ChannelDtmfReceived", channel=channel_json("c1"), digit="5", duration_ms=120),
            ChannelDtmfReceived,
            "c1",
        ),
        (
            event("ChannelHangupRequest", channel=channel_json("c1"), cause=16, soft=True),
            ChannelHangupRequest,
            "c1",
        ),
        (
            event("ChannelDestroyed", channel=channel_json("c1"), cause=19, cause_txt="No answer"),
            ChannelDestroyed,
            "c1",
        ),
        (event("ChannelStateChange", channel=channel_json("c1", state="Up")), ChannelStateChange, "c1"),
        (
            event("ChannelEnteredBridge", bridge={"id": "b1", "channels": ["c1"]}, channel=channel_json("c1")),
            ChannelEnteredBridge,
            "c1",
        ),
        (
            event("ChannelLeftBridge", bridge={"id": "b1"}, channel=channel_json("c1")),
            ChannelLeftBridge,
            "c1",
        ),
        (
            event("PlaybackStarted", playback={"id": "pb1", "target_uri": "channel:c1", "state": "playing"}),
            PlaybackStarted,
            "c1",
        ),
        (
            event("PlaybackFinished", playback={"id": "pb2", "target_uri": "bridge:q1", "state": "done"}),
            PlaybackFinished,
            "bridge:q1",
        ),
        (
            event("RecordingStarted", recording={"name": "r1", "target_uri": "channel:c1", "state": "recording"}),
            RecordingStarted,
            "c1",
        ),
        (
            event(
                "RecordingFinished",
                recording={"name": "r1", "target_uri": "channel:c1", "duration": 7, "talking_duration": 5},
            ),
            RecordingFinished,
            "c1",
        ),
        (
            event("RecordingFailed", recording={"name": "r1", "target_uri": "channel:c1", "cause": "no space"}),
            RecordingFailed,
            "c1",
        ),
        (
            event("Dial", peer=channel_json("agent-1"), dialstatus="RINGING", dialstring="PJSIP/1001"),
            Dial,
            "agent-1",
        ),
        (
            event("EndpointStateChange", endpoint={"technology": "PJSIP", "resource": "1001", "state": "online"}),
            EndpointStateChange,
            None,
        ),
        (
            event("DeviceStateChanged", device_state={"name": "PJSIP/1001", "state": "INUSE"}),
            DeviceStateChanged,
            None,
        ),
        (event("ApplicationReplaced"), ApplicationReplaced, None),
    ],
)
def test_given_modelled_event_json_when_parsed_then_type_and_routing_key(
    raw: dict[str, object], cls: type[object], key: str | None
) -> None:
    parsed = parse_event(raw)

    assert type(parsed) is cls
    assert channel_key(parsed) == key


def test_given_detail_fields_when_parsed_then_values_kept() -> None:
    dtmf = parse_event(event("ChannelDtmfReceived", channel=channel_json("c1"), digit="#", duration_ms=80))
    hangup = parse_event(event("ChannelHangupRequest", channel=channel_json("c1"), cause=16, soft=True))
    destroyed = parse_event(event("ChannelDestroyed", channel=channel_json("c1"), cause=19, cause_txt="No answer"))
    failed = parse_event(
        event("PlaybackFinished", playback={"id": "pb1", "target_uri": "channel:c1", "state": "failed"})
    )
    rec = parse_event(
        event(
            "RecordingFinished",
            recording={"name": "vm-1", "target_uri": "channel:c1", "duration": 7, "talking_duration": 5},
        )
    )

    assert isinstance(dtmf, ChannelDtmfReceived) and (dtmf.digit, dtmf.duration_ms) == ("#", 80)
    assert isinstance(hangup, ChannelHangupRequest) and (hangup.cause, hangup.soft) == (16, True)
    assert isinstance(destroyed, ChannelDestroyed) and (destroyed.cause, destroyed.cause_txt) == (19, "No answer")
    assert isinstance(failed, PlaybackFinished) and failed.playback.failed and failed.playback.id == "pb1"
    assert isinstance(rec, RecordingFinished)
    assert (rec.recording.name, rec.recording.duration, rec.recording.talking_duration) == ("vm-1", 7, 5)


def test_given_unmodelled_type_when_parsed_then_unknown_event_routed_by_its_channel() -> None:
    parsed = parse_event(event("ChannelVarset", channel=channel_json("c9"), variable="X", value="1"))

    assert isinstance(parsed, UnknownEvent)
    assert parsed.type == "ChannelVarset" and parsed.error == ""
    assert channel_key(parsed) == "c9"
    continuing = parse_event(
        event("PlaybackContinuing", playback={"id": "p", "target_uri": "channel:c9", "state": "continuing"})
    )
    assert channel_key(continuing) == "c9"


@pytest.mark.parametrize(
    "raw",
    [
        event("StasisStart", channel={"name": "no id"}),
        event("StasisStart", channel="c1"),
        event("ChannelDtmfReceived", channel=channel_json("c1")),  # digit missing
        event("ChannelDestroyed", channel=channel_json("c1"), cause="sixteen"),
        event("ChannelHangupRequest", channel=channel_json("c1"), soft="yes"),
        event("PlaybackFinished", playback=None),
        event("StasisStart", channel=channel_json("c1"), args="inbound"),
    ],
)
def test_given_malformed_event_when_parsed_then_unknown_event_and_warning(
    raw: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="unico.ari"):
        parsed = parse_event(raw)

    assert isinstance(parsed, UnknownEvent)
    assert parsed.type == raw["type"] and parsed.error
    assert "malformed ARI" in caplog.text


@pytest.mark.parametrize("raw", [None, [], "StasisStart", 42, {}, {"type": 7}, {"no": "type"}])
def test_given_garbage_when_parsed_then_unknown_event_without_raising(raw: object) -> None:
    parsed = parse_event(raw)

    assert isinstance(parsed, UnknownEvent)
    assert parsed.error
    assert channel_key(parsed) is None


def test_given_synthetic_events_when_keyed_then_they_go_to_control() -> None:
    assert channel_key(Connected(reconnect=True)) is None
    assert channel_key(Disconnected(reason="x")) is None
    assert channel_key(parse_event(event("PlaybackFinished", playback={"id": "p", "target_uri": ""}))) is None
