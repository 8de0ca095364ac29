"""The controller learns its operators' softphone registrations (``Controller.sync_registrations``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from unico.ari.models import (
    MODELLED_EVENTS,
    Application,
    ApplicationReplaced,
    Channel,
    ChannelStateChange,
    Endpoint,
    EndpointStateChange,
    StasisStart,
)
from unico.controller import SUBSCRIBE_BATCH, Controller


class Recorder:
    def __init__(self, online: set[str], calls_app_endpoints: tuple[str, ...] = ()) -> None:
        self.online = online
        self.subscriptions: list[list[str]] = []
        self.subscribed_apps: set[str] = set()
        self.calls_app_endpoints = calls_app_endpoints
        self.unsubscribed: list[tuple[str, list[str]]] = []
        self.registrations: dict[str, bool] = {}

    async def subscribe(self, app: str, sources: list[str]) -> None:
        if len(sources) > SUBSCRIBE_BATCH:  # what Asterisk 22 answers with 400 beyond ~120
            raise AssertionError("Too many values for event_source")
        self.subscribed_apps.add(app)
        self.subscriptions.append(list(sources))

    async def get_application(self, app: str) -> Application:
        return Application(name=app, endpoint_ids=self.calls_app_endpoints if app == "u" else ())

    async def unsubscribe(self, app: str, sources: list[str]) -> None:
        if len(sources) > SUBSCRIBE_BATCH:
            raise AssertionError("Too many values for event_source")
        self.unsubscribed.append((app, list(sources)))

    async def list_endpoints(self, technology: str) -> list[Endpoint]:
        return [Endpoint(technology=technology, resource=r, state="online") for r in sorted(self.online)] + [
            Endpoint(technology=technology, resource="carrier", state="online")
        ]

    async def registration(self, agent_id: str, online: bool) -> None:
        self.registrations[agent_id] = online


async def test_given_250_operators_when_syncing_then_batched_subscriptions_and_one_read_of_all_states() -> None:
    operators = {f"op{n:04d}": object() for n in range(250)}
    recorder = Recorder(online={"op0001", "op0249"})
    fake: Any = SimpleNamespace(
        acd=recorder,
        rest=recorder,
        config=SimpleNamespace(operators=operators),
        settings=SimpleNamespace(ari_app="u", ari_endpoints_app="u-endpoints"),
    )
    fake._drop_calls_app_endpoints = lambda: Controller._drop_calls_app_endpoints(fake)

    await Controller.sync_registrations(fake)

    assert recorder.subscribed_apps == {"u-endpoints"}, "the calls' app gets no endpoint's channel events"
    assert recorder.unsubscribed == []
    assert [len(batch) for batch in recorder.subscriptions] == [100, 100, 50]
    assert [s for batch in recorder.subscriptions for s in batch] == [f"endpoint:PJSIP/{op}" for op in operators]
    assert recorder.registrations == {op: op in ("op0001", "op0249") for op in operators}


async def test_given_calls_app_still_subscribed_to_endpoints_when_syncing_then_those_subscriptions_dropped() -> None:
    """An older controller subscribed the calls' app itself; Asterisk keeps the subscriptions."""
    stale = tuple(f"PJSIP/op{n:04d}" for n in range(150))
    recorder = Recorder(online=set(), calls_app_endpoints=stale)
    fake: Any = SimpleNamespace(
        acd=recorder,
        rest=recorder,
        config=SimpleNamespace(operators={"op0001": object()}),
        settings=SimpleNamespace(ari_app="u", ari_endpoints_app="u-endpoints"),
    )
    fake._drop_calls_app_endpoints = lambda: Controller._drop_calls_app_endpoints(fake)

    await Controller.sync_registrations(fake)

    assert [app for app, _ in recorder.unsubscribed] == ["u", "u"]
    assert [s for _, batch in recorder.unsubscribed for s in batch] == [f"endpoint:{e}" for e in stale]
    assert recorder.registrations == {"op0001": False}


def _events_fake() -> tuple[Any, list[object]]:
    routed: list[object] = []
    fake: Any = SimpleNamespace(
        settings=SimpleNamespace(ari_app="u", ari_endpoints_app="u-endpoints"),
        dispatcher=SimpleNamespace(dispatch=routed.append),
        endpoint_events_ignored=0,
    )
    return fake, routed


def test_given_events_of_both_apps_then_only_the_endpoints_apps_channel_events_are_dropped() -> None:
    fake, routed = _events_fake()
    leg = Channel(id="c1-op1", name="PJSIP/op0001-00000001", state="Up")
    online = Endpoint(technology="PJSIP", resource="op0001", state="online")
    calls_app_leg = StasisStart(application="u", channel=leg, args=("agent",))
    duplicate = ChannelStateChange(application="u-endpoints", channel=leg)
    registration = EndpointStateChange(application="u-endpoints", endpoint=online)
    replaced = ApplicationReplaced(application="u-endpoints")

    for event in (calls_app_leg, duplicate, registration, replaced):
        Controller._on_event(fake, event)

    assert routed == [calls_app_leg, registration, replaced]
    assert fake.endpoint_events_ignored == 1


class Filters:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.filters: dict[str, frozenset[str]] = {}

    async def set_event_filter(self, app: str, *, allowed: frozenset[str]) -> None:
        if self.refuse:
            raise RuntimeError("404 Not Found")
        self.filters[app] = frozenset(allowed)


async def test_given_connect_when_filters_set_then_calls_app_gets_modelled_types_and_endpoints_app_registrations() -> (
    None
):
    rest = Filters()
    fake: Any = SimpleNamespace(rest=rest, settings=SimpleNamespace(ari_app="u", ari_endpoints_app="u-endpoints"))

    await Controller.set_event_filters(fake)

    assert rest.filters == {
        "u": MODELLED_EVENTS,
        "u-endpoints": frozenset({"EndpointStateChange", "ApplicationReplaced"}),
    }
    assert {"StasisStart", "PlaybackFinished", "ChannelDestroyed"} <= MODELLED_EVENTS
    assert "ChannelVarset" not in MODELLED_EVENTS


async def test_given_an_asterisk_without_event_filters_then_the_controller_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake: Any = SimpleNamespace(
        rest=Filters(refuse=True), settings=SimpleNamespace(ari_app="u", ari_endpoints_app="u-endpoints")
    )

    await Controller.set_event_filters(fake)

    assert caplog.text.count("cannot set the event filter") == 2
