"""The controller learns its operators' softphone registrations (``Controller.sync_registrations``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from unico.ari.models import Endpoint
from unico.controller import SUBSCRIBE_BATCH, Controller


class Recorder:
    def __init__(self, online: set[str]) -> None:
        self.online = online
        self.subscriptions: list[list[str]] = []
        self.registrations: dict[str, bool] = {}

    async def subscribe(self, app: str, sources: list[str]) -> None:
        if len(sources) > SUBSCRIBE_BATCH:  # what Asterisk 22 answers with 400 beyond ~120
            raise AssertionError("Too many values for event_source")
        self.subscriptions.append(list(sources))

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
        acd=recorder, rest=recorder, config=SimpleNamespace(operators=operators), settings=SimpleNamespace(ari_app="u")
    )

    await Controller.sync_registrations(fake)

    assert [len(batch) for batch in recorder.subscriptions] == [100, 100, 50]
    assert [s for batch in recorder.subscriptions for s in batch] == [f"endpoint:PJSIP/{op}" for op in operators]
    assert recorder.registrations == {op: op in ("op0001", "op0249") for op in operators}
