"""End-to-end: the sipp operator softphone (tests/softphone.py) against the real Asterisk.

Only the ``asterisk`` session fixture is used, no controller: the tests register op1001 and make
calls to it from a throwaway ARI application of their own.

What Asterisk 22 does, as these tests pin down:

- ``GET /endpoints/PJSIP/op1001`` says ``online`` as soon as the contact is registered, and
  ``offline`` once it is removed, or once a qualify OPTIONS (every 30 s) goes unanswered.
- Originate to a softphone that answers: ``StasisStart`` for the channel; a ``DELETE`` of the
  channel sends the softphone a BYE. When the softphone hangs up: ``StasisEnd``, then
  ``ChannelDestroyed`` (cause 0, "Unknown": a BYE without a Reason header).
- Originate to a softphone that only rings: at the originate timeout Asterisk CANCELs and the app
  gets ``ChannelDestroyed`` with cause 19 ("User alerting, no answer") and no ``StasisStart``.
- A softphone that is busy (486): ``ChannelDestroyed`` with cause 17 ("User busy").
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests.e2e.rig import wait_for
from tests.softphone import RegistrationError, Softphone
from unico import pbx
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings

pytestmark = pytest.mark.e2e

OPERATOR = "op1001"
CAUSE_NO_ANSWER = 19
CAUSE_BUSY = 17


# --- helpers ---------------------------------------------------------------------------------------


class AriApp:
    """A throwaway Stasis application with its own event websocket; events are kept in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = f"softphone-test-{secrets.token_hex(4)}"
        self.base = f"{settings.ari_url}/ari"
        self.events: list[dict[str, Any]] = []
        secret = settings.ari_password.get_secret_value()
        token = base64.b64encode(f"{settings.ari_user}:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AriApp:
        self._http = aiohttp.ClientSession(headers=self._headers)
        secret = self.settings.ari_password.get_secret_value()
        try:
            self._ws = await self._http.ws_connect(
                self.base.replace("http", "ws", 1) + "/events",
                params={"app": self.name, "api_key": f"{self.settings.ari_user}:{secret}"},
            )
        except BaseException:
            await self._http.close()
            raise
        self._reader = asyncio.create_task(self._read(self._ws))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.close()  # Asterisk drops the application with its last websocket
        if self._reader is not None:
            await self._reader  # ends with the websocket
        if self._http is not None:
            await self._http.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(message.data))

    async def originate(self, endpoint: str, *, timeout: int, caller_id: str = "") -> str:
        """``POST /channels`` into this app; the new channel's id."""
        assert self._http is not None
        params = {"endpoint": endpoint, "app": self.name, "timeout": str(timeout)}
        if caller_id:
            params["callerId"] = caller_id
        async with self._http.post(f"{self.base}/channels", params=params) as response:
            body = await response.json()
            assert response.status == 200, body
            channel_id: str = body["id"]
            return channel_id

    async def hang_up(self, channel_id: str) -> None:
        assert self._http is not None
        async with self._http.delete(f"{self.base}/channels/{channel_id}") as response:
            assert response.status == 204, await response.text()

    def of_channel(self, channel_id: str, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type and e.get("channel", {}).get("id") == channel_id]

    async def wait_event(self, event_type: str, channel_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        async def seen() -> dict[str, Any] | None:
            found = self.of_channel(channel_id, event_type)
            return found[0] if found else None

        event: dict[str, Any] = await wait_for(
            seen, timeout=timeout, interval=0.02, what=f"{event_type} for {channel_id} (events: {self.kinds()})"
        )
        return event

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events if e["type"] != "ChannelVarset"]


async def ari(settings: Settings, path: str) -> Any:
    return await asyncio.to_thread(pbx.ari_get, settings, path)


async def endpoint_state(settings: Settings) -> str:
    endpoint = await ari(settings, f"/endpoints/PJSIP/{OPERATOR}")
    state: str = endpoint["state"]
    return state


async def wait_endpoint_state(settings: Settings, state: str, phone: Softphone | None = None) -> None:
    async def reached() -> bool:
        return await endpoint_state(settings) == state

    what = f"endpoint {OPERATOR} {state}" + (f"\n{phone.explain()}" if phone else "")
    await wait_for(reached, timeout=5, interval=0.05, what=what)


async def contacts(settings: Settings) -> str:
    """``pjsip show contacts``: ARI's endpoint resource does not list contacts."""
    return await asyncio.to_thread(pbx.cli, settings, "pjsip show contacts")


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def password(asterisk: Settings) -> SecretStr:
    """op1001's password, as the session's ``write_operators`` generated it."""
    return ensure_operator_passwords(asterisk.state_dir, [OPERATOR])[OPERATOR]


@pytest.fixture
async def phone(asterisk: Settings, password: SecretStr) -> AsyncIterator[Softphone]:
    """op1001's softphone; afterwards: closed, artifacts gone, no registration, no channel left."""
    phone = Softphone(OPERATOR, password, port=asterisk.sip_port)
    yield phone
    await phone.close()
    assert phone.artifacts is None, f"a sipp run went wrong:\n{phone.explain()}"
    assert phone.calls_in_progress == [], phone.explain()

    async def no_channels() -> bool:
        return not await ari(asterisk, "/channels")

    await wait_for(no_channels, timeout=5, what="no channels left in Asterisk")
    await wait_endpoint_state(asterisk, "offline")


# --- registration ----------------------------------------------------------------------------------


async def test_given_operator_softphone_when_registering_then_endpoint_online_with_its_contact(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register(expires=120)

    await wait_endpoint_state(asterisk, "online", phone)
    assert f"{OPERATOR}/{phone.contact}" in await contacts(asterisk)


async def test_given_registered_softphone_when_unregistering_then_endpoint_offline_without_contact(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("answer")
    await wait_endpoint_state(asterisk, "online", phone)

    await phone.unregister()

    await wait_endpoint_state(asterisk, "offline", phone)
    assert phone.contact not in await contacts(asterisk)
    assert phone.running  # the UAS outlives the registration


async def test_given_wrong_password_when_registering_then_rejected_and_endpoint_stays_offline(
    asterisk: Settings, phone: Softphone
) -> None:
    impostor = Softphone(OPERATOR, "not-" + secrets.token_urlsafe(18), port=asterisk.sip_port)

    with pytest.raises(RegistrationError) as failure:
        await impostor.register()

    assert failure.value.status == 401, failure.value
    assert not impostor.registered
    assert impostor.artifacts is None  # a clear rejection leaves no files
    assert await endpoint_state(asterisk) == "offline"
    assert impostor.contact not in await contacts(asterisk)


# --- calls -----------------------------------------------------------------------------------------


async def test_given_answering_softphone_when_originated_and_hung_up_by_ari_then_answered_and_bye_received(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("answer")
    async with AriApp(asterisk) as app:
        sent = time.time()
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=10, caller_id='"Mario Rossi" <3331234567>')

        await app.wait_event("StasisStart", channel)
        (invite,) = await phone.wait_invites(1, timeout=5)
        await phone.wait_count("ANSWERED", 1, timeout=5)
        await app.hang_up(channel)
        await phone.wait_count("REMOTE_BYE", 1, timeout=5)
        await app.wait_event("ChannelDestroyed", channel)

    assert sent - 1 < invite.at < time.time(), invite
    assert (invite.caller_name, invite.caller_number) == ("Mario Rossi", "3331234567"), invite
    assert (phone.answered, phone.remote_byes, phone.cancelled) == (1, 1, 0), phone.explain()


async def test_given_ringing_softphone_when_originate_times_out_then_cancelled_with_cause_no_answer(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("no_answer")
    async with AriApp(asterisk) as app:
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=2)

        destroyed = await app.wait_event("ChannelDestroyed", channel, timeout=6)
        await phone.wait_count("CANCELLED", 1, timeout=5)

    assert destroyed["cause"] == CAUSE_NO_ANSWER, destroyed
    assert not app.of_channel(channel, "StasisStart"), app.kinds()
    assert (len(phone.invites), phone.answered, phone.cancelled) == (1, 0, 1), phone.explain()


async def test_given_slow_answering_softphone_when_asterisk_gives_up_first_then_cancelled_while_ringing(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("answer", ring_ms=5000)
    async with AriApp(asterisk) as app:
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=1)

        destroyed = await app.wait_event("ChannelDestroyed", channel, timeout=5)
        await phone.wait_count("CANCELLED", 1, timeout=5)

    assert destroyed["cause"] == CAUSE_NO_ANSWER, destroyed
    assert phone.answered == 0, phone.explain()


async def test_given_softphone_with_talk_time_when_answered_then_operator_hangs_up_after_it(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("answer", ring_ms=200, talk_ms=500)
    async with AriApp(asterisk) as app:
        sent = time.monotonic()
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=10)

        await app.wait_event("StasisStart", channel)
        answered = time.monotonic()
        await app.wait_event("StasisEnd", channel)
        ended = time.monotonic()
        await phone.wait_count("LOCAL_BYE", 1, timeout=5)
        await app.wait_event("ChannelDestroyed", channel)

    assert answered - sent >= 0.2, "answered before ring_ms"
    assert ended - answered >= 0.45, "hung up before talk_ms"
    assert (phone.answered, phone.local_byes, phone.remote_byes) == (1, 1, 0), phone.explain()


async def test_given_busy_softphone_when_originated_then_rejected_with_cause_busy(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("busy")
    async with AriApp(asterisk) as app:
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=5)

        destroyed = await app.wait_event("ChannelDestroyed", channel)
        await phone.wait_count("BUSY", 1, timeout=5)

    assert destroyed["cause"] == CAUSE_BUSY, destroyed
    assert (phone.rejected, phone.answered) == (1, 0), phone.explain()


async def test_given_call_in_progress_when_softphone_stops_then_it_hangs_up_and_asterisk_keeps_no_channel(
    asterisk: Settings, phone: Softphone
) -> None:
    await phone.register()
    await phone.start("answer")
    async with AriApp(asterisk) as app:
        channel = await app.originate(f"PJSIP/{OPERATOR}", timeout=10)
        await app.wait_event("StasisStart", channel)

        await phone.stop()

        await app.wait_event("ChannelDestroyed", channel)
    assert phone.count("DROPPED") == 1 and phone.calls_in_progress == [], phone.explain()
