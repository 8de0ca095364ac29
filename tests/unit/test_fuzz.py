"""Hostile input, by property-based fuzzing (hypothesis): nothing crashes, each gets a clear answer.

- the ARI event parser turns any JSON (and any mutation of a real event) into an event, never an
  exception: a malformed frame from Asterisk must not kill the websocket reader;
- the IVR engine survives any sequence of caller and adapter events on the shipped menus (DTMF
  floods, junk digits, over-long digit strings, stale timers and playbacks, hang-ups at any step):
  it only ever returns commands, keeps digit buffers within the node's limit, and ends when the
  caller hangs up;
- the YAML loader answers any file content with a config or with errors that name the file, and
  nothing else (never a traceback), so a bad edit cannot take the running config down.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr import engine
from ivr.config import IvrConfig, load_config
from ivr.source import ConfigErrors
from unico.ari.models import AriEvent, UnknownEvent, parse_event

ROOT = Path(__file__).resolve().parents[2]
TUESDAY_10 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

CHANNEL = {
    "id": "1700000000.1",
    "name": "PJSIP/carrier-00000001",
    "state": "Up",
    "caller": {"name": "", "number": "0612345678"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "from-carrier", "exten": "803160", "priority": 1, "app_name": "Stasis", "app_data": ""},
    "creationtime": "2026-11-24T10:00:00.000+0100",
    "language": "it",
}
REAL_EVENTS: list[dict[str, Any]] = [
    {
        "type": "StasisStart",
        "application": "unico",
        "timestamp": "t",
        "args": ["inbound", "803160"],
        "channel": CHANNEL,
    },
    {"type": "ChannelDtmfReceived", "application": "unico", "digit": "1", "duration_ms": 100, "channel": CHANNEL},
    {"type": "ChannelHangupRequest", "application": "unico", "cause": 16, "channel": CHANNEL},
    {"type": "ChannelDestroyed", "application": "unico", "cause": 16, "cause_txt": "Normal", "channel": CHANNEL},
    {"type": "StasisEnd", "application": "unico", "channel": CHANNEL},
    {
        "type": "PlaybackFinished",
        "application": "unico",
        "playback": {
            "id": "p1",
            "media_uri": "sound:x",
            "target_uri": "channel:1700000000.1",
            "language": "it",
            "state": "done",
        },
    },
    {
        "type": "EndpointStateChange",
        "application": "unico",
        "endpoint": {"technology": "PJSIP", "resource": "op1001", "state": "online", "channel_ids": []},
    },
]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_given_any_json_frame_when_parsed_then_an_event_and_never_an_exception(raw: object) -> None:
    event = parse_event(raw)
    assert isinstance(event, AriEvent)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(REAL_EVENTS),
    st.lists(
        st.tuples(
            st.sampled_from(["channel", "playback", "endpoint", "digit", "cause", "args", "type", "x"]), json_values
        ),
        max_size=3,
    ),
    st.lists(st.sampled_from(["id", "name", "state", "caller", "dialplan", "resource", "target_uri"]), max_size=3),
)
def test_given_a_real_event_with_fields_mangled_when_parsed_then_event_or_unknown_never_exception(
    base: dict[str, Any], replacements: list[tuple[str, object]], dropped: list[str]
) -> None:
    raw = {key: (dict(value) if isinstance(value, dict) else value) for key, value in base.items()}
    for key, value in replacements:
        raw[key] = value
    for nested in ("channel", "playback", "endpoint"):
        if isinstance(raw.get(nested), dict):
            for key in dropped:
                raw[nested].pop(key, None)
    event = parse_event(raw)
    assert isinstance(event, AriEvent)
    if isinstance(event, UnknownEvent) and event.type == base["type"]:
        assert event.error, "a known event that could not be parsed says why"


# --- the IVR engine under any event sequence -----------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> IvrConfig:
    return load_config(ROOT / "dialplan", ROOT / "skills")


#: one event an adapter could deliver, drawn before the call runs: a kind, which of the session's
#: outstanding ids it answers (an index, taken modulo how many there are then), junk to use instead,
#: and a payload. Drawn up front, so what Hypothesis draws never depends on what the engine did
#: (a draw inside the run, from the session's own ids, made replays of a shrink draw differently).
raw_event = st.tuples(
    st.integers(0, 9),
    st.integers(0, 50),
    st.none() | st.text(max_size=5),
    st.booleans(),
    st.sampled_from(list("0123456789*#ABCD")) | st.text(max_size=3),
    st.sampled_from(["ok", "found", "not_found", "opened", ""]) | st.text(max_size=10),
    st.none() | st.floats(0, 600),
    st.sampled_from(["answered", "completed", "closed", "full", "unavailable", "timeout", "error", "?"]),
)


def adapter_event(raw: tuple[Any, ...], issued: list[engine.Command]) -> engine.Event:
    """The event ``raw`` stands for now: mostly an answer to what the session asked, or junk."""
    choice, index, junk, flag, digits, result, duration, queue_result = raw

    def pick(ids: list[str]) -> str:
        if junk is not None or not ids:
            return junk if junk is not None else "stale"
        return ids[index % len(ids)]

    if choice <= 3:
        return engine.Dtmf(digits)
    if choice == 4:
        return engine.PlaybackFinished(pick([c.playback_id for c in issued if isinstance(c, engine.Play)]))
    if choice == 5:
        return engine.TimerExpired(pick([c.timer_id for c in issued if isinstance(c, engine.StartTimer)]))
    if choice == 6:
        request = pick([c.request_id for c in issued if isinstance(c, engine.RunAction)])
        return engine.ActionDone(request, result) if flag else engine.ActionFailed(request, result)
    if choice == 7:
        name = pick([c.name for c in issued if isinstance(c, engine.StartRecording)])
        return engine.RecordingFinished(name, duration) if flag else engine.RecordingFailed(name, "failed")
    if choice == 8:
        return engine.QueueResult(pick([c.request_id for c in issued if isinstance(c, engine.Enqueue)]), queue_result)
    return engine.HungUp()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(raw_event, max_size=80), dialled=st.sampled_from(["803160", "803161", "12345"]))
def test_given_any_sequence_of_caller_events_then_engine_never_raises_and_ends_on_hangup(
    shipped: IvrConfig, events: list[tuple[Any, ...]], dialled: str
) -> None:
    session = engine.Session(shipped, call_id="c", dialled=dialled, caller=None, clock=lambda: TUESDAY_10)
    issued = list(session.start())
    for raw in events:
        commands = session.handle(adapter_event(raw, issued))
        assert all(isinstance(c, engine.Command.__args__) for c in commands)  # type: ignore[attr-defined]
        issued.extend(commands)
        assert len(session._buffer) <= 64, "the digit buffer never grows without bound"
        if session.phase is engine.Phase.DONE:
            break
    session.handle(engine.HungUp())
    assert session.phase is engine.Phase.DONE
    assert session.outcome, "every call ends with an outcome"
    assert session.handle(engine.Dtmf("1")) == [], "nothing after the end"


# --- the YAML loader under any content -----------------------------------------------------------


@pytest.fixture(scope="module")
def config_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzcfg")
    shutil.copytree(ROOT / "dialplan", folder / "dialplan")
    shutil.copytree(ROOT / "skills", folder / "skills")
    return folder


yaml_like = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "menus:",
                "  main:",
                "    type: menu",
                "    options: {1: x}",
                "- a",
                "  - b",
                "key: [1, 2",
                "'",
                "&a *a",
                "!!python/object:os.system",
                "\t",
                "numbers:",
                "  803160: {entry: nowhere}",
                "queues: 5",
                "? ",
                "---",
            ]
        ),
        max_size=12,
    ).map("\n".join),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(
        [
            "dialplan/main.yaml",
            "dialplan/numbers.yaml",
            "skills/queues.yaml",
            "skills/operators.yaml",
            "dialplan/hours.yaml",
        ]
    ),
    content=yaml_like,
)
def test_given_any_file_content_when_loading_then_config_or_errors_naming_the_file(
    config_copy: Path, target: str, content: str
) -> None:
    path = config_copy / target
    original = path.read_text()
    path.write_text(content)
    try:
        try:
            load_config(config_copy / "dialplan", config_copy / "skills")
        except ConfigErrors as exc:
            assert exc.errors, "at least one error"
            for error in exc.errors:
                assert error.message, "each error says what is wrong"
                # where: a file of the config folder and a line (emptying a file may surface as
                # dangling references in the files that pointed into it)
                assert error.location is not None, error
                assert error.location.file.is_relative_to(config_copy) and error.location.line >= 1, error
    finally:
        path.write_text(original)
