"""Pushing the live state to browsers: one Redis subscription, one rebuild per burst, every client.

Theory of operation
-------------------
Every controller publishes ``agent:<id>``, ``queue:<name>`` and ``call:<id>`` on
``LiveState.events_channel`` whenever an operator's state or a line changes (inside the same Lua
script or transaction as the change). The messages say *what* changed, never to what, so a lost
message costs a late refresh, not a wrong number: the hub re-reads the state from Redis.

``LiveHub`` runs while at least one browser is connected (so an idle controller holds no extra
connection and no task):

* the **feed** task reads the channel on its own pub/sub connection and marks what is dirty (the
  wallboard, which operators);
* the **pump** task waits for a mark, lets the burst settle for ``debounce`` seconds (a call being
  answered is three or four messages within milliseconds), then rebuilds once and sends to every
  client; with no mark for ``refresh`` seconds it rebuilds anyway (longest wait grows, today's
  counts move, and a lost message heals);
* each send has its own timeout (``send_timeout``): a client that cannot take a message in time is
  dropped (closed with 4408), the others are sent to concurrently and never wait for it.

What a client gets depends on what it asked for and who it is (``Watch``): supervisors and admins
the ``wallboard`` snapshot (``unico.console.snapshot``) with its ``floor`` (every operator, the
conversations, the waiting calls: ``build_floor``), which no other client ever gets; the floor's
queues and callers of live calls come from the contact records (``details``), each call read once
while it lasts (again when another operator holds it); an operator ``agent`` messages for their own
operator (state, reason, call id) and a ``screenpop`` when that operator starts ringing or answers
a call. Supervisors may follow an operator too (the operator page used by a supervisor).

The websocket handshake and authentication are in ``unico.console.http``.

Example::

    hub = LiveHub(redis=controller.redis, live=acd.live, config=lambda: controller.config,
                  today=TodayCache(load))
    await hub.serve(ws, Watch(wallboard=True, operator=None), hello={...})   # returns when the client leaves
    await hub.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from acd.agents import Agent, AgentState
from acd.live import LiveState
from acd.routing import WaitingCall
from ivr.config import IvrConfig
from unico.cancel import raise_if_cancelled
from unico.console.snapshot import (
    CLOSING_SOON,
    AreaStatus,
    CallDetails,
    all_queue_members,
    area_statuses,
    build_floor,
    build_snapshot,
    held_calls,
)
from unico.console.today import TodayCache

log = logging.getLogger(__name__)

#: websocket close codes of the console (4000-4999 are the application's, RFC 6455 section 7.4.2)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408

#: states in which the operator holds a call: the screen pop is shown
_ON_A_CALL = (AgentState.RINGING, AgentState.ON_CALL)

ScreenPop = Callable[[str, str], Awaitable[dict[str, Any] | None]]
"""``(operator id, call id) -> screen-pop body`` (``GET /api/agents/{id}/screenpop``'s), or None."""

DetailsLoader = Callable[[Iterable[str]], Awaitable[dict[str, CallDetails]]]
"""``call ids -> {call id: queue and caller}`` from the contact records (``today.call_details``)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Watch:
    """What one client receives: wallboard snapshots, one operator's state, or both; ``floor``
    adds the supervisors' panel to the snapshots (``unico.console.http`` sets it for supervisors
    and admins only)."""

    wallboard: bool
    operator: str | None
    floor: bool = False


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    watch: Watch
    #: the last ``agent`` message sent, to send only changes
    last_agent: dict[str, Any] | None = None
    #: (call id, state) of the last screen pop sent
    popped: tuple[str, str] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def agent_message(agent_id: str, agent: Agent | None, name: str | None = None) -> dict[str, Any]:
    """The ``agent`` message for one operator (logged out when Redis does not know them)."""
    return {
        "type": "agent",
        "id": agent_id,
        "name": name,
        "state": agent.state.value if agent is not None else AgentState.LOGGED_OUT.value,
        "reason": agent.reason.value if agent is not None and agent.reason is not None else None,
        "call_id": agent.call_id if agent is not None else None,
        "since": agent.since if agent is not None else None,
        "registered": agent.registered if agent is not None else False,
    }


def _is_ping(data: str) -> bool:
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == "ping"


class LiveHub:
    """See the module docstring. ``config`` is read at every rebuild (a reload takes effect)."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        live: LiveState,
        config: Callable[[], IvrConfig],
        today: TodayCache,
        clock: Callable[[], datetime] = utc_now,
        screenpop: ScreenPop | None = None,
        details: DetailsLoader | None = None,
        debounce: float = 0.1,
        refresh: float = 5.0,
        send_timeout: float = 2.0,
        closing_soon: timedelta = CLOSING_SOON,
    ) -> None:
        self.redis = redis
        self.live = live
        self._config = config
        self.today = today
        self.clock = clock
        self.screenpop = screenpop
        self.details = details
        self.debounce = debounce
        self.refresh = refresh
        self.send_timeout = send_timeout
        self.closing_soon = closing_soon
        self.clients: set[Client] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()
        self._lifecycle = asyncio.Lock()
        self._wake = asyncio.Event()
        self._board_dirty = False
        self._dirty_agents: set[str] = set()
        self._areas: tuple[AreaStatus, ...] = ()
        self._areas_key: tuple[str, datetime] | None = None
        self._members: tuple[str, dict[str, tuple[str, ...]]] | None = None
        #: (call id, operator holding it or "" while waiting) -> what its contact row says
        self._details: dict[tuple[str, str], CallDetails] = {}
        self.rebuilds = 0
        self.dropped = 0

    # --- clients --------------------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse, watch: Watch, hello: dict[str, Any]) -> None:
        """Send ``hello`` and the current state, then keep the client until it leaves."""
        client = Client(ws, watch)
        try:
            async with self._lifecycle:
                self.clients.add(client)
                if not self._tasks:
                    await self._start()
            await self._send(client, hello)
            await self._first(client)
            async for message in ws:
                if message.type is WSMsgType.TEXT and _is_ping(message.data):
                    await self._send(client, {"type": "pong"})
                # anything else from the browser is ignored: the protocol is one-way after hello
        finally:
            self.clients.discard(client)
            async with self._lifecycle:
                if not self.clients and self._tasks:
                    await self._stop()

    async def _first(self, client: Client) -> None:
        if client.watch.wallboard:
            await self._send(client, await self.wallboard(floor=client.watch.floor))
        if client.watch.operator is not None:
            agent = await self.live.get_agent(client.watch.operator)
            await self._update_operator(client, agent)

    async def _send(self, client: Client, message: dict[str, Any] | str) -> bool:
        """Send one message within ``send_timeout``; a client too slow for that is dropped."""
        if client not in self.clients or client.ws.closed:
            return False
        data = message if isinstance(message, str) else json.dumps(message)
        try:
            async with client.lock:  # one writer per socket: aiohttp frames must not interleave
                async with asyncio.timeout(self.send_timeout):
                    await client.ws.send_str(data)
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            self._drop(client, f"send failed: {type(exc).__name__}")
            return False
        return True

    def _drop(self, client: Client, why: str) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        self.dropped += 1
        log.info("console: dropping a live client (%s)", why)

        async def close() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await client.ws.close(code=CLOSE_TOO_SLOW, message=b"too slow")

        task = asyncio.get_running_loop().create_task(close(), name="console-drop")
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def close(self) -> None:
        """Close every client (going away) and stop the tasks; for the app's shutdown."""
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await client.ws.close(code=1001, message=b"server shutdown")
        async with self._lifecycle:
            self.clients.clear()
            await self._stop()
        for task in list(self._closers):
            with contextlib.suppress(Exception):
                await task

    # --- tasks ----------------------------------------------------------------------------------

    async def _start(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.live.events_channel)
        self._tasks = [
            asyncio.create_task(self._feed(pubsub), name="console-feed"),
            asyncio.create_task(self._pump(), name="console-pump"),
        ]

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # bounded: a task that ignores its cancel must not hold every later client's lifecycle
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                where = io.StringIO()
                task.print_stack(file=where)  # where it waits: the next one to look at this has it
                log.error("console: task %s did not stop when cancelled:\n%s", task.get_name(), where.getvalue())

    async def _feed(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a Redis blip: the periodic refresh covers it
                    log.warning("console: live feed read failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                if message is not None:
                    self.note(str(message["data"]))
                raise_if_cancelled()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def note(self, event: str) -> None:
        """Mark what an ``agent:``/``queue:``/``call:`` message makes stale and wake the pump."""
        kind, _, name = event.partition(":")
        if kind == "agent":
            self._dirty_agents.add(name)
        elif kind == "queue":
            self.today.invalidate()  # a call left a line: answered or gone
        self._board_dirty = True
        self._wake.set()

    async def _pump(self) -> None:
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races
                # with the wake (the hub's stop then waits for this task forever)
                async with asyncio.timeout(self.refresh):
                    await self._wake.wait()
                await asyncio.sleep(self.debounce)  # let the burst settle: one rebuild for all of it
            except TimeoutError:
                # nothing heard for a while: refresh everything (a lost message heals here; an
                # operator whose state did not change gets nothing, see _update_operator)
                self._board_dirty = True
                self._dirty_agents |= {c.watch.operator for c in self.clients if c.watch.operator is not None}
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next wake or refresh tries again
                log.warning("console: live update failed: %s", exc)
            raise_if_cancelled()

    async def flush(self) -> None:
        """Rebuild what is dirty and send it to the clients that watch it, concurrently."""
        board, self._board_dirty = self._board_dirty, False
        dirty, self._dirty_agents = self._dirty_agents, set()
        clients = list(self.clients)
        sends: list[Awaitable[Any]] = []
        boards = [c for c in clients if c.watch.wallboard]
        if board and boards:
            full = await self.wallboard(floor=any(c.watch.floor for c in boards))
            with_floor = json.dumps(full)
            # a wallboard client without the floor never gets it, not even as an unused field
            plain = json.dumps({k: v for k, v in full.items() if k != "floor"}) if "floor" in full else with_floor
            sends += [self._send(c, with_floor if c.watch.floor else plain) for c in boards]
        watched = {c.watch.operator for c in clients if c.watch.operator is not None}
        if watched & dirty:
            agents = await self.live.agents(sorted(watched & dirty))
            sends += [
                self._update_operator(c, agents.get(c.watch.operator))
                for c in clients
                if c.watch.operator is not None and c.watch.operator in dirty
            ]
        if sends:
            await asyncio.gather(*sends)

    async def _update_operator(self, client: Client, agent: Agent | None) -> None:
        operator = client.watch.operator
        assert operator is not None
        spec = self._config().operators.get(operator)
        message = agent_message(operator, agent, spec.name if spec is not None else None)
        if message != client.last_agent:
            client.last_agent = message
            await self._send(client, message)
        if agent is None or agent.state not in _ON_A_CALL or agent.call_id is None:
            client.popped = None
            return
        key = (agent.call_id, agent.state.value)
        if key == client.popped:
            return
        client.popped = key
        body: dict[str, Any] | None = None
        if self.screenpop is not None:
            try:
                body = await self.screenpop(operator, agent.call_id)
            except Exception as exc:  # noqa: BLE001 - the page fetches it itself then
                log.warning("console: screen pop for %s failed: %s", operator, type(exc).__name__)
        await self._send(
            client,
            {
                "type": "screenpop",
                "operator": operator,
                "call_id": agent.call_id,
                "state": agent.state.value,
                # without a body the page asks GET /api/agents/{id}/screenpop itself
                "screenpop": body,
            },
        )

    # --- the wallboard --------------------------------------------------------------------------

    async def wallboard(self, *, floor: bool = False) -> dict[str, Any]:
        """The current snapshot as JSON (``GET /api/wallboard`` answers the same); with ``floor``
        also the supervisors' panel, under ``"floor"``."""
        config = self._config()
        now = self.clock()
        agents = await self.live.agents(config.operators)
        waiting = await self.live.snapshot_waiting(config.queues)
        try:
            today = await self.today.get(now)
        except Exception as exc:  # noqa: BLE001 - the database is down: show the last counts
            log.warning("console: today's counts unavailable: %s", type(exc).__name__)
            today = self.today.counts
        areas = await self._area_rows(config, now)
        if self._members is None or self._members[0] != config.version:
            self._members = (config.version, all_queue_members(config))
        self.rebuilds += 1
        board = build_snapshot(
            config,
            agents,
            waiting,
            today,
            now,
            areas=areas,
            members=self._members[1],
            closing_soon=self.closing_soon,
        ).to_json_dict()
        if floor:
            details = await self._call_details(agents, waiting)
            board["floor"] = build_floor(config, agents, waiting, details, now).to_json_dict()
        return board

    async def _call_details(self, agents: Mapping[str, Agent], waiting: list[WaitingCall]) -> dict[str, CallDetails]:
        """Queue and caller of the calls held or waiting now, reading only the ones not seen yet.

        A call is read again when another operator holds it (a transfer changes its queue). A
        failed read is retried at the next rebuild; meanwhile those calls show no queue or caller.
        """
        if self.details is None:
            return {}
        wanted = set(held_calls(agents).items()) | {(call.call_id, "") for call in waiting}
        self._details = {key: value for key, value in self._details.items() if key in wanted}
        missing = wanted - self._details.keys()
        if missing:
            try:
                found = await self.details({call_id for call_id, _ in missing})
            except Exception as exc:  # noqa: BLE001 - the database is down: the numbers still show
                log.warning("console: call details unavailable: %s", type(exc).__name__)
                found = None
            if found is not None:
                for key in missing:
                    # no contact row (yet) is remembered too: not read again at every rebuild
                    self._details[key] = found.get(key[0], CallDetails())
        return {call_id: value for (call_id, _), value in self._details.items()}

    async def _area_rows(self, config: IvrConfig, now: datetime) -> tuple[AreaStatus, ...]:
        """The areas' office hours, worked out again only when one may have changed.

        Each answer reads the holiday tables (about a millisecond per instant tried): off the
        event loop, and then kept until the earliest next change (or closing-soon mark), at most
        a minute so a reloaded calendar shows.
        """
        key = self._areas_key
        if key is not None and key[0] == config.version and now < key[1]:
            return self._areas
        rows = await asyncio.to_thread(area_statuses, config.calendars, now, closing_soon=self.closing_soon)
        until = now + timedelta(minutes=1)
        for row in rows:
            if row.next_change is not None:
                for mark in (row.next_change - self.closing_soon, row.next_change):
                    if mark > now:
                        until = min(until, mark)
        self._areas, self._areas_key = rows, (config.version, until)
        return rows


__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "Client",
    "DetailsLoader",
    "LiveHub",
    "ScreenPop",
    "Watch",
    "agent_message",
]
