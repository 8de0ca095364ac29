"""AriRest against the fault-injecting fake ARI: error mapping, quoting, auth, timeouts."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator

import pytest

from unico.ari import (
    AriBadArgument,
    AriBadRequest,
    AriConflict,
    AriError,
    AriInvalidState,
    AriLocalError,
    AriNotConnected,
    AriNotFound,
    AriRemoteError,
    AriRest,
    AriServerError,
    AriTimeout,
    AriUnauthorized,
    AriUnprocessable,
    gone_ok,
    new_id,
)

from .fake_ari import FakeAri, channel_json


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def rest(fake: FakeAri) -> AsyncIterator[AriRest]:
    async with AriRest(fake.base_url, fake.user, fake.password, timeout=0.5) as client:
        yield client


async def test_given_channel_gone_when_hangup_then_ari_not_found_with_context(fake: FakeAri, rest: AriRest) -> None:
    fake.script("DELETE", "/channels/c1", status=404, json={"message": "Channel not found"})

    with pytest.raises(AriNotFound) as info:
        await rest.hangup("c1", reason="busy")

    err = info.value
    assert isinstance(err, AriRemoteError) and isinstance(err, AriError)
    assert (err.status, err.method, err.path, err.message) == (404, "DELETE", "/channels/c1", "Channel not found")
    assert fake.requests_to("DELETE", "/channels/c1")[0].param("reason") == "busy"


async def test_given_channel_gone_when_cleanup_in_gone_ok_then_success_and_flagged(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script("DELETE", "/playbacks/pb1", status=404, json={"message": "Playback not found"})

    with gone_ok() as first:
        await rest.stop_playback("pb1")
    with gone_ok() as second:
        await rest.stop_playback("pb1")  # unscripted: 204

    assert first.gone and not second.gone


async def test_given_other_error_when_in_gone_ok_then_it_propagates(fake: FakeAri, rest: AriRest) -> None:
    fake.script("DELETE", "/channels/c1", status=500, json={"message": "boom"})

    with pytest.raises(AriServerError), gone_ok():
        await rest.hangup("c1")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, AriBadRequest),
        (401, AriUnauthorized),
        (404, AriNotFound),
        (409, AriConflict),
        (412, AriInvalidState),
        (422, AriUnprocessable),
        (500, AriServerError),
        (503, AriServerError),
        (418, AriRemoteError),
    ],
)
async def test_given_error_status_when_called_then_mapped_to_remote_error(
    fake: FakeAri, rest: AriRest, status: int, cls: type[AriRemoteError]
) -> None:
    fake.script("POST", "/bridges/b1/addChannel", status=status, json={"message": f"said {status}"})

    with pytest.raises(cls) as info:
        await rest.add_channel("b1", ["c1", "c2"])

    assert type(info.value) is cls
    assert info.value.status == status and info.value.message == f"said {status}"
    assert fake.requests_to("POST", "/bridges/b1/addChannel")[0].param("channel") == "c1,c2"


async def test_given_409_and_422_when_bridging_then_conflict_and_unprocessable(fake: FakeAri, rest: AriRest) -> None:
    fake.script("POST", "/bridges/b1/addChannel", status=409, json={"message": "Channel not in Stasis application"})
    fake.script("POST", "/bridges/b1/addChannel", status=422, json={"message": "Channel not in Stasis application"})

    with pytest.raises(AriConflict, match="not in Stasis"):
        await rest.add_channel("b1", "c1")
    with pytest.raises(AriUnprocessable, match="-> 422"):
        await rest.add_channel("b1", "c1")


async def test_given_slow_asterisk_when_request_exceeds_timeout_then_local_timeout_error(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script("GET", "/channels/c1", json=channel_json("c1"), delay=10.0)
    started = time.monotonic()

    with pytest.raises(AriTimeout) as info:
        await rest.get_channel("c1")

    assert isinstance(info.value, AriLocalError)
    assert time.monotonic() - started < 2.0
    assert "GET /channels/c1" in str(info.value)


async def test_given_nothing_listening_when_called_then_not_connected() -> None:
    async with FakeAri() as gone:
        url = gone.base_url
    async with AriRest(url, "unico", "pw", timeout=0.5) as client:
        with pytest.raises(AriNotConnected):
            await client.ping()


async def test_given_closed_client_when_called_then_not_connected(fake: FakeAri) -> None:
    client = AriRest(fake.base_url, fake.user, fake.password)
    await client.close()

    with pytest.raises(AriNotConnected, match="closed"):
        await client.answer("c1")


async def test_given_device_with_slash_when_requested_then_segment_sent_as_percent_2f(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script("GET", "/deviceStates/PJSIP%2F1001", json={"name": "PJSIP/1001", "state": "NOT_INUSE"})
    fake.script("DELETE", "/channels/weird%2Fid%20x", status=204)

    state = await rest.get_device_state("PJSIP/1001")
    await rest.hangup("weird/id x")

    assert state.name == "PJSIP/1001" and state.state == "NOT_INUSE"
    assert [r.raw_path for r in fake.requests] == ["/ari/deviceStates/PJSIP%2F1001", "/ari/channels/weird%2Fid%20x"]


async def test_given_credentials_when_requests_sent_then_basic_auth_header_and_no_api_key(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script("GET", "/asterisk/ping", json={"asterisk_id": "aa:bb", "ping": "pong", "timestamp": "t"})

    pong = await rest.ping()
    await rest.answer("c1")

    assert pong.ping == "pong"
    assert all(r.headers["Authorization"] == fake.auth_header for r in fake.requests)
    assert all(r.param("api_key") is None for r in fake.requests)


async def test_given_auth_failure_and_timeout_when_logged_then_no_secret_in_logs_or_errors(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-S3cret-ARI"
    caplog.set_level(logging.DEBUG, logger="unico.ari")
    fake.script("GET", "/channels/c1", json=channel_json("c1"), delay=5.0)
    errors: list[AriError] = []
    reprs: list[str] = []

    for password in (wrong, fake.password):
        async with AriRest(fake.base_url, fake.user, password, timeout=0.3) as client:
            reprs.append(repr(client))
            try:
                await (client.ping() if password == wrong else client.get_channel("c1"))
            except AriError as exc:
                errors.append(exc)

    assert [type(e) for e in errors] == [AriUnauthorized, AriTimeout]
    haystack = caplog.text + "".join(reprs) + "".join(f"{e!s}{e!r}" for e in errors)
    for password in (wrong, fake.password):
        encoded = base64.b64encode(f"{fake.user}:{password}".encode()).decode()
        assert password not in haystack and encoded not in haystack
    assert all("password='****'" in r for r in reprs)
    assert "GET /asterisk/ping -> 401" in caplog.text


def test_given_url_with_credentials_when_constructed_then_refused_without_echo() -> None:
    with pytest.raises(AriBadArgument) as info:
        AriRest("http://unico:leaky@127.0.0.1:8088", "unico", "pw")

    assert "leaky" not in str(info.value)


async def test_given_media_list_when_play_then_one_comma_separated_media_param_and_playback_model(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script(
        "POST",
        "/channels/c1/play/pb-1",
        status=201,
        json={"id": "pb-1", "target_uri": "channel:c1", "media_uri": "sound:queue-thereare", "state": "queued"},
    )

    playback = await rest.play(
        "c1", "pb-1", ["sound:queue-thereare", "number:3", "sound:queue-callswaiting"], lang="it"
    )

    sent = fake.requests_to("POST", "/channels/c1/play/pb-1")[0]
    # Asterisk 22 reads allowMultiple query parameters as one comma-separated value and keeps only
    # the last of repeated ones (verified on 22.10.1: only the last sound played).
    assert sent.params("media") == ["sound:queue-thereare,number:3,sound:queue-callswaiting"]
    assert sent.param("lang") == "it"
    assert playback.id == "pb-1" and playback.state == "queued"
    with pytest.raises(AriBadArgument):
        await rest.play("c1", "pb-2", [])
    with pytest.raises(AriBadArgument):
        await rest.play("c1", "pb-2", "sound:x")
    with pytest.raises(AriBadArgument):
        await rest.play("c1", "pb-2", ["sound:a,b"])  # a comma would split the URI


async def test_given_originate_when_sent_then_params_and_variables_body(fake: FakeAri, rest: AriRest) -> None:
    agent_leg = new_id("agent")
    fake.script("POST", f"/channels/{agent_leg}", json=channel_json(agent_leg, state="Down"))

    chan = await rest.originate(
        agent_leg,
        "PJSIP/1001",
        app="unico",
        app_args=["agent", "call-1"],
        caller_id="Queue <100>",
        ring_timeout=20,
        originator="c1",
        variables={"PJSIP_HEADER(add,Alert-Info)": "auto-answer"},
    )

    sent = fake.requests_to("POST", f"/channels/{agent_leg}")[0]
    assert chan.id == agent_leg
    assert dict(sent.query) == {
        "endpoint": "PJSIP/1001",
        "app": "unico",
        "appArgs": "agent,call-1",
        "callerId": "Queue <100>",
        "timeout": "20",
        "originator": "c1",
    }
    assert sent.body == {"variables": {"PJSIP_HEADER(add,Alert-Info)": "auto-answer"}}


async def test_given_record_when_sent_then_ari_parameter_names(fake: FakeAri, rest: AriRest) -> None:
    fake.script("POST", "/channels/c1/record", status=201, json={"name": "vm-1", "state": "queued", "format": "wav"})

    recording = await rest.record("c1", "vm-1", max_duration=60, max_silence=5, beep=True, terminate_on="#")

    sent = fake.requests_to("POST", "/channels/c1/record")[0]
    assert dict(sent.query) == {
        "name": "vm-1",
        "format": "wav",
        "maxDurationSeconds": "60",
        "maxSilenceSeconds": "5",
        "beep": "true",
        "terminateOn": "#",
        "ifExists": "fail",
    }
    assert recording.name == "vm-1"


async def test_given_lists_when_fetched_then_models(fake: FakeAri, rest: AriRest) -> None:
    fake.script("GET", "/channels", json=[channel_json("c1"), channel_json("c2")])
    fake.script("GET", "/bridges", json=[{"id": "acd-q-sales", "bridge_type": "holding", "channels": ["c1"]}])
    fake.script("GET", "/applications/unico", json={"name": "unico", "channel_ids": ["c1"], "bridge_ids": []})
    fake.script("GET", "/endpoints/PJSIP/1001", json={"technology": "PJSIP", "resource": "1001", "state": "online"})
    fake.script("GET", "/channels/c1/variable", json={"value": "sales"})

    channels = await rest.list_channels()
    bridges = await rest.list_bridges()
    app = await rest.get_application("unico")
    endpoint = await rest.get_endpoint("PJSIP", "1001")
    value = await rest.get_variable("c1", "UNICO_QUEUE")

    assert [c.id for c in channels] == ["c1", "c2"]
    assert bridges[0].channels == ("c1",) and bridges[0].bridge_type == "holding"
    assert app.channel_ids == ("c1",)
    assert endpoint.state == "online"
    assert value == "sales"


async def test_given_malformed_success_body_when_parsed_then_remote_error(fake: FakeAri, rest: AriRest) -> None:
    fake.script("GET", "/channels/c1", json={"name": "no id"})

    with pytest.raises(AriRemoteError, match="'id' is required"):
        await rest.get_channel("c1")


async def test_given_keepalive_socket_closed_when_get_then_retried_once(fake: FakeAri, rest: AriRest) -> None:
    fake.script("GET", "/channels/c1", disconnect=True)
    fake.script("GET", "/channels/c1", json=channel_json("c1"))

    chan = await rest.get_channel("c1")

    assert chan.id == "c1"
    assert len(fake.requests_to("GET", "/channels/c1")) == 2


async def test_given_keepalive_socket_closed_when_post_then_not_retried(fake: FakeAri, rest: AriRest) -> None:
    fake.script("POST", "/channels/c1/answer", disconnect=True)

    with pytest.raises(AriNotConnected):
        await rest.answer("c1")

    assert len(fake.requests_to("POST", "/channels/c1/answer")) == 1


def test_given_prefix_when_new_id_then_unique_prefixed_ids() -> None:
    ids = {new_id("pb") for _ in range(100)}

    assert len(ids) == 100 and all(i.startswith("pb-") for i in ids)


async def test_given_endpoints_of_a_technology_when_listed_then_one_request_and_models(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.script(
        "GET",
        "/endpoints/PJSIP",
        json=[
            {"technology": "PJSIP", "resource": "op1001", "state": "online", "channel_ids": []},
            {"technology": "PJSIP", "resource": "op1002", "state": "offline", "channel_ids": []},
        ],
    )

    endpoints = await rest.list_endpoints("PJSIP")

    assert [(e.resource, e.state) for e in endpoints] == [("op1001", "online"), ("op1002", "offline")]
    assert len(fake.requests_to("GET", "/endpoints/PJSIP")) == 1
