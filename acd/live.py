"""Live ACD state in Redis: agent states, waiting calls and atomic claims.

Redis holds only what changes every second and is rebuildable: after a Redis restart the controller
calls ``wipe`` and writes back every agent (from the roster, ARI endpoint states and the contact
records) and every waiting call (each queued call's actor writes its own line back). Nothing here is the
source of truth for history; the database is.

Key layout (``P`` is the prefix given to ``LiveState``, for example ``"unico:"``)::

    P agents                set   ids of every agent written here
    P agent:<id>            hash  state, reason, since, call_id, registered (1/0), last_call_end,
                                  controller, token (the claim holder; empty when unclaimed)
    P queue:<name>          zset  call ids waiting in the queue, score = original enqueue time
                                  (Redis drops it when empty; queue names come from the config)
    P call:<id>             hash  queue, priority, enqueued_at, tier, requirements (JSON), also
                                  (overflow routes, JSON), owner (controller holding the channel),
                                  status (waiting | claimed), agent, controller, token
    P owners                hash  call id -> owner controller, for every call the ACD holds
                                  (waiting, ringing or talking), so any process can reach its owner
    P aht:<queue>           str   moving average of handle time, for estimated-wait announcements
    P epoch                 str   a random marker: a new value means Redis lost its data (rebuild)
    P lease:<app>           str   the controller commanding that ARI app (``unico.lease``)
    P session:<id>          str   a queued call's recovery snapshot (JSON, ``unico.recovery``), from
                                  the moment it enters a queue until it leaves the ACD

Claims (``claim`` / ``release``) are single Lua scripts (EVALSHA, re-loaded on NOSCRIPT by redis-py's
registered scripts), so several controllers on the same Redis never give one agent two calls nor one
call two agents: Redis runs a script to completion before any other command. ``set_agent`` is a
compare-and-set on the agent's state for the same reason: a pause arriving from the REST API must not
overwrite a claim made a microsecond earlier by another controller.

A routing decision is one round trip: ``claim_best_agent`` (a call arrives) and ``claim_best_call``
(an operator frees up) are scripts that read the live state, choose and claim in one go. What only
the roster and the config decide (who fits a call, rank groups by strategy, the preferred operator)
is worked out beforehand by ``acd.routing``; the script applies the live part (free, idle longest;
most urgent call the operator fits). The two-trip way stays for what the scripts hand back: a call
another controller owns, or one escalated since this process wrote it: one script reads
(``read_call_and_agents``, ``read_agent_and_waiting``), ``acd.routing`` chooses in Python, one
script claims the pair (and may carry the offer to the call's owner: ``claim(notify=...)``).

The optional fencing token is stored with the claim and must be presented again to release it, so a
restarted controller reusing its id cannot release a claim its previous incarnation made.

Times are seconds from the injected clock, passed in by the caller.

Example::

    live = LiveState(redis.asyncio.Redis(decode_responses=True), prefix="unico:")
    await live.add_call(call)
    if await live.claim("op1003", call.call_id, "ctl-a", now=clock()):
        ...  # ring op1003's softphone
"""

from __future__ import annotations

import enum
import functools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from acd import scripts
from acd.agents import Agent, AgentState, NotReadyReason
from acd.routing import Route, WaitingCall


class LeaseLost(Exception):
    """A claim was refused: the claiming controller no longer holds its app's lease."""


@dataclass(frozen=True, slots=True)
class AgentChange:
    """An agent state this process wrote: ``since`` is the change's time (the caller's clock)."""

    agent_id: str
    state: AgentState
    reason: NotReadyReason | None
    call_id: str | None
    since: float


class Pick(enum.Enum):
    """How a one-round-trip routing decision (``claim_best_agent``, ``claim_best_call``) ended."""

    #: the pair is claimed
    WON = "won"
    #: the call is no longer waiting (claimed by another, answered, gone), or the operator is not free
    GONE = "gone"
    #: nobody fits who is free: no free operator for the call, no waiting call for the operator
    NOBODY = "nobody"
    #: another controller owns the call: route it with a snapshot and ``claim(notify=...)``
    FOREIGN = "foreign"
    #: the call's routes changed since this process wrote them (an escalation elsewhere): re-read
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class AgentPick:
    """``claim_best_agent``'s outcome: the operator claimed, when they were idle from, and how many
    candidates were free (for the decision's reason)."""

    status: Pick
    agent_id: str = ""
    idle_since: float = 0.0
    free: int = 0


@dataclass(frozen=True, slots=True)
class CallPick:
    """``claim_best_call``'s outcome: the call claimed (as Redis held it) and how many waiting calls
    the operator could serve (for the decision's reason)."""

    status: Pick
    call: WaitingCall | None = None
    servable: int = 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _optional_float(value: str) -> float | None:
    return float(value) if value else None


def _fields(flat: Any) -> dict[str, str]:
    """``[field, value, ...]`` from the read script as a dict (``{}`` is cjson's empty table)."""
    if not isinstance(flat, list):
        return {}
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _rows(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _routes_json(routes: Iterable[Route]) -> str:
    return json.dumps([[route.tier, dict(route.requirements)] for route in routes], sort_keys=True)


def _agent(agent_id: str, raw: Mapping[Any, Any]) -> Agent:
    data = {_text(k): _text(v) for k, v in raw.items()}
    return Agent(
        id=agent_id,
        state=AgentState(data["state"]),
        reason=NotReadyReason(data["reason"]) if data.get("reason") else None,
        since=float(data["since"]),
        call_id=data.get("call_id") or None,
        registered=data.get("registered") == "1",
        last_call_end=_optional_float(data.get("last_call_end", "")),
    )


@functools.lru_cache(maxsize=1024)
def _decoded(text: str) -> Any:
    """JSON of a call's levels or overflow routes: the calls of a queue share a handful of values,
    and a snapshot of a thousand calls decoded them a thousand times. Callers copy what they keep."""
    return json.loads(text)


def _waiting_call(call_id: str, raw: Mapping[Any, Any]) -> WaitingCall:
    return _call_from(call_id, {_text(k): _text(v) for k, v in raw.items()})


def _call_from(call_id: str, data: Mapping[str, str]) -> WaitingCall:
    requirements: dict[str, int] = dict(_decoded(data["requirements"]))
    also = tuple(Route(tier, dict(levels)) for tier, levels in _decoded(data.get("also") or "[]"))
    return WaitingCall(
        call_id=call_id,
        queue=data["queue"],
        priority=int(data["priority"]),
        enqueued_at=float(data["enqueued_at"]),
        requirements=requirements,
        tier=data["tier"],
        also=also,
        owner=data.get("owner", ""),
        preferred=data.get("preferred") or None,
    )


class LiveState:
    """Agent states, waiting calls and claims under one key prefix (see the module docstring).

    The Redis client may use ``decode_responses`` or not; values are decoded here.
    """

    def __init__(
        self, redis: aioredis.Redis, prefix: str, *, on_agent: Callable[[AgentChange], None] | None = None
    ) -> None:
        self._redis = redis
        self.prefix = prefix
        #: told of every agent state this process wrote (the agent state log for the reports)
        self.on_agent = on_agent
        self._claim = redis.register_script(scripts.CLAIM)
        self._release = redis.register_script(scripts.RELEASE)
        self._set_agent = redis.register_script(scripts.SET_AGENT)
        self._read = redis.register_script(scripts.READ)
        self._adopt = redis.register_script(scripts.ADOPT)
        self._requeue = redis.register_script(scripts.REQUEUE)
        self._restore_claim = redis.register_script(scripts.RESTORE_CLAIM)
        self._route_call = redis.register_script(scripts.ROUTE_CALL)
        self._route_agent = redis.register_script(scripts.ROUTE_AGENT)
        self._count_logged_in = redis.register_script(scripts.COUNT_LOGGED_IN)
        self._remove_call = redis.register_script(scripts.REMOVE_CALL)
        self._handle_time = redis.register_script(scripts.HANDLE_TIME)
        #: the calls this process wrote (``add_call``, ``update_call``): which agents to read with the
        #: call when routing it, in the same round trip (a hint only: the decision uses what Redis holds)
        self._written: dict[str, WaitingCall] = {}

    # --- keys --------------------------------------------------------------------------------

    def agent_key(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}"

    def call_key(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}"

    def queue_key(self, queue: str) -> str:
        return f"{self.prefix}queue:{queue}"

    @property
    def agents_key(self) -> str:
        return f"{self.prefix}agents"

    @property
    def events_channel(self) -> str:
        """Pub/sub channel announcing every change, for live views (wallboards, operator pages).

        Messages are ``agent:<id>`` (state changed), ``queue:<name>`` (a call joined or left the
        line, or was claimed) and ``call:<id>`` (a waiting call's levels or priority changed). They
        say what changed, not to what: a view re-reads the state, so a lost message costs nothing
        but a late refresh. Published inside the same script or transaction as the change.
        """
        return f"{self.prefix}events"

    # --- agents ------------------------------------------------------------------------------

    async def set_agent(self, agent: Agent, *, expected: AgentState | None = None) -> bool:
        """Write ``agent``; with ``expected``, only if the stored state is still ``expected``.

        Pass the state you read before computing ``agent`` with ``acd.agents.apply``: ``False``
        means another controller changed the agent meanwhile (for example claimed it), so re-read.
        A claim's holder is kept while the agent has a call and cleared once it has none.
        """
        fields = {
            "state": agent.state.value,
            "reason": agent.reason.value if agent.reason is not None else "",
            "since": repr(agent.since),
            "call_id": agent.call_id or "",
            "registered": "1" if agent.registered else "0",
            "last_call_end": repr(agent.last_call_end) if agent.last_call_end is not None else "",
        }
        args: list[str] = [agent.id, expected.value if expected is not None else "", self.events_channel]
        for name, value in fields.items():
            args += [name, value]
        result = await self._set_agent(keys=[self.agent_key(agent.id), self.agents_key], args=args)
        if result:
            self._changed(AgentChange(agent.id, agent.state, agent.reason, agent.call_id, agent.since))
        return bool(result)

    def _changed(self, change: AgentChange) -> None:
        if self.on_agent is not None:
            self.on_agent(change)

    async def get_agent(self, agent_id: str) -> Agent | None:
        raw = await self._redis.hgetall(self.agent_key(agent_id))
        return _agent(agent_id, raw) if raw else None

    async def claim_holder(self, agent_id: str) -> tuple[str, str] | None:
        """(controller id, fencing token) of the claim on ``agent_id``, if any."""
        controller, token = await self._redis.hmget(self.agent_key(agent_id), ["controller", "token"])
        return (_text(controller), _text(token)) if _text(controller) else None

    async def agent_ids(self) -> list[str]:
        return sorted(_text(member) for member in await self._redis.smembers(self.agents_key))

    async def remove_agent(self, agent_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.agent_key(agent_id))
            pipe.srem(self.agents_key, agent_id)
            await pipe.execute()

    # --- waiting calls -----------------------------------------------------------------------

    async def add_call(self, call: WaitingCall, *, snapshot: str | None = None) -> None:
        """Put ``call`` in its queue's line, ordered by its (original) enqueue time; with
        ``snapshot``, store the call's recovery snapshot in the same round trip (``save_session``
        with ``call.owner``)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            fields: dict[Any, Any] = self._call_fields(call)
            pipe.hset(self.call_key(call.call_id), mapping=fields)
            pipe.zadd(self.queue_key(call.queue), {call.call_id: call.enqueued_at})
            if snapshot is not None:
                if not call.owner:
                    raise ValueError(f"call {call.call_id}: a snapshot needs the call's owner")
                pipe.set(self.session_key(call.call_id), snapshot)
            if call.owner:
                pipe.hset(self.owners_key, call.call_id, call.owner)
            pipe.publish(self.events_channel, f"queue:{call.queue}")
            await pipe.execute()
        self._written[call.call_id] = call

    @staticmethod
    def _call_fields(call: WaitingCall) -> dict[str, str]:
        return {
            "queue": call.queue,
            "priority": str(call.priority),
            "enqueued_at": repr(call.enqueued_at),
            "tier": call.tier,
            "requirements": json.dumps(dict(call.requirements), sort_keys=True),
            "also": _routes_json(call.also),
            "owner": call.owner,
            "preferred": call.preferred or "",
            "status": "waiting",
            "agent": "",
            "controller": "",
            "token": "",
        }

    def written_call(self, call_id: str) -> WaitingCall | None:
        """The call as this process last wrote it (``add_call``, ``update_call``), or None."""
        return self._written.get(call_id)

    async def update_call(
        self, call_id: str, *, requirements: Mapping[str, int], also: tuple[Route, ...], priority: int
    ) -> bool:
        """Escalation: new minimum levels and overflow routes; the call keeps its place."""
        key = self.call_key(call_id)
        if not await self._redis.exists(key):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "requirements": json.dumps(dict(requirements), sort_keys=True),
                    "also": _routes_json(also),
                    "priority": str(priority),
                },
            )
            pipe.publish(self.events_channel, f"call:{call_id}")
            await pipe.execute()
        written = self._written.get(call_id)
        if written is not None:
            self._written[call_id] = replace(written, requirements=dict(requirements), also=also, priority=priority)
        return True

    async def get_call(self, call_id: str) -> WaitingCall | None:
        return await self._get_call(call_id)

    async def get_waiting_call(self, call_id: str) -> WaitingCall | None:
        """The call if it is still waiting (not claimed, not gone), in one round trip.

        Same as ``get_call`` when ``call_status`` is ``waiting``, else None.
        """
        raw = await self._redis.hgetall(self.call_key(call_id))
        data = {_text(k): _text(v) for k, v in raw.items()}
        return _waiting_call(call_id, data) if data.get("status") == "waiting" else None

    async def call_status(self, call_id: str) -> str | None:
        """``waiting``, ``claimed``, or None once the call is connected or gone."""
        return _text(await self._redis.hget(self.call_key(call_id), "status")) or None

    # --- owners (every call the ACD holds) ---------------------------------------------------

    @property
    def owners_key(self) -> str:
        return f"{self.prefix}owners"

    async def set_owner(self, call_id: str, owner: str) -> None:
        await self._redis.hset(self.owners_key, call_id, owner)

    async def owner(self, call_id: str) -> str | None:
        return _text(await self._redis.hget(self.owners_key, call_id)) or None

    async def owners_of(self, call_ids: Iterable[str]) -> dict[str, str]:
        """The owners Redis knows of ``call_ids`` (one round trip); calls without one are left out."""
        ids = list(call_ids)
        if not ids:
            return {}
        values = await self._redis.hmget(self.owners_key, ids)
        return {call_id: _text(value) for call_id, value in zip(ids, values, strict=True) if value}

    async def forget_call(self, call_id: str) -> None:
        """The call is over: drop it from its line (if still there) and from the owners, in one
        round trip."""
        self._written.pop(call_id, None)
        await self._remove_call(
            keys=[self.call_key(call_id), self.owners_key], args=[call_id, self.queue_key(""), self.events_channel, "1"]
        )

    async def requeue(self, call_id: str, call: WaitingCall, *, now: float | None = None) -> str | None:
        """Put ``call`` back in its line at its original time, whatever Redis held for it: a claim
        left on it is withdrawn (that operator is ready again, and their id returned). For a
        controller taking over a waiting call from a dead one, or after Redis lost it."""
        fields = self._call_fields(call)
        at = now if now is not None else call.enqueued_at
        args: list[str] = [call_id, repr(at), self.events_channel, self.agent_key("")]
        for name, value in fields.items():
            args += [name, value]
        args += [repr(call.enqueued_at), call.queue]
        # a call moved to another queue since: leave no trace in the old line
        old_queue = await self._call_queue(call_id)
        if old_queue is not None and old_queue != call.queue:
            await self._redis.zrem(self.queue_key(old_queue), call_id)
        freed = _text(
            await self._requeue(keys=[self.call_key(call_id), self.queue_key(call.queue), self.owners_key], args=args)
        )
        self._written[call_id] = call
        if freed:
            self._changed(AgentChange(freed, AgentState.READY, None, None, at))
        return freed or None

    async def restore_claim(self, agent_id: str, call: WaitingCall, controller_id: str, *, now: float) -> None:
        """Write back a claim Redis lost: ``agent_id`` rings for ``call``, held by ``controller_id``."""
        args: list[str] = [agent_id, call.call_id, controller_id, repr(now), self.events_channel]
        for name, value in self._call_fields(call).items():
            args += [name, value]
        keys = [self.agent_key(agent_id), self.call_key(call.call_id), self.owners_key, self.agents_key]
        await self._restore_claim(keys=keys, args=args)
        self._changed(AgentChange(agent_id, AgentState.RINGING, None, call.call_id, now))

    @property
    def epoch_key(self) -> str:
        return f"{self.prefix}epoch"

    async def epoch(self) -> str:
        """A random marker of this Redis's data: it changes when Redis lost everything (a restart
        without persistence), which is when every controller must write its part back."""
        value = _text(await self._redis.get(self.epoch_key))
        if value:
            return value
        await self._redis.set(self.epoch_key, secrets.token_hex(8), nx=True)
        return _text(await self._redis.get(self.epoch_key))

    # --- call snapshots (unico.recovery) -----------------------------------------------------

    def session_key(self, call_id: str) -> str:
        return f"{self.prefix}session:{call_id}"

    async def save_session(self, call_id: str, owner: str, snapshot: str) -> None:
        """Store a queued call's recovery snapshot (``unico.recovery.CallSnapshot`` as JSON) and
        name its owner, in one round trip."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.session_key(call_id), snapshot)
            pipe.hset(self.owners_key, call_id, owner)
            await pipe.execute()

    async def drop_session(self, call_id: str) -> None:
        await self._redis.delete(self.session_key(call_id))

    async def sessions(self) -> dict[str, str]:
        """Every stored snapshot by call id (a restarted controller's reconciliation reads them)."""
        keys = [_text(key) async for key in self._redis.scan_iter(match=self.session_key("*"), count=500)]
        if not keys:
            return {}
        values = await self._redis.mget(keys)
        start = len(self.session_key(""))
        return {key[start:]: _text(value) for key, value in zip(keys, values, strict=True) if value is not None}

    async def adopt_claim(self, agent_id: str, call_id: str, controller_id: str) -> bool:
        """Make ``controller_id`` the holder of ``agent_id``'s claim on ``call_id`` (a controller that
        took over the call from a dead one); False if the agent no longer holds that call."""
        keys = [self.agent_key(agent_id), self.call_key(call_id)]
        return bool(await self._adopt(keys=keys, args=[call_id, controller_id]))

    # --- agents in bulk, statistics ----------------------------------------------------------

    async def agents(self, agent_ids: Iterable[str]) -> dict[str, Agent]:
        """Every agent of ``agent_ids`` that Redis knows, in one round trip (routing snapshots)."""
        ids = list(agent_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(self.agent_key(agent_id))
            rows = await pipe.execute()
        return {agent_id: _agent(agent_id, raw) for agent_id, raw in zip(ids, rows, strict=True) if raw}

    async def handle_time(self, queue: str, default: float) -> float:
        value = _text(await self._redis.get(f"{self.prefix}aht:{queue}"))
        return float(value) if value else default

    async def record_handle_time(self, queue: str, seconds: float, default: float, weight: float = 0.2) -> float:
        """Fold one conversation's handle time into the queue's moving average (one round trip,
        atomic across controllers); returns the new average."""
        keys = [f"{self.prefix}aht:{queue}"]
        return float(_text(await self._handle_time(keys=keys, args=[repr(seconds), repr(default), repr(weight)])))

    async def remove_call(self, call_id: str) -> bool:
        """Forget a call (the caller hung up while waiting, or the conversation began): out of its
        line, in one round trip. False if Redis no longer had it."""
        self._written.pop(call_id, None)
        keys = [self.call_key(call_id), self.owners_key]
        return bool(await self._remove_call(keys=keys, args=[call_id, self.queue_key(""), self.events_channel, "0"]))

    async def waiting(self, queue: str) -> list[WaitingCall]:
        """Calls still waiting in ``queue``, earliest enqueue time first."""
        ids = [_text(member) for member in await self._redis.zrange(self.queue_key(queue), 0, -1)]
        calls = [await self._get_call(call_id) for call_id in ids]
        return [call for call in calls if call is not None]

    async def queue_length(self, queue: str) -> int:
        """How many calls wait in ``queue``: one ``ZCARD``, whatever the length.

        For a queue's ``max_length`` check at every entry: ``len(waiting(queue))`` reads every
        waiting call's hash, one round trip each, so each entry would cost more the longer the
        line, which is when the controller can least afford it. A line member whose call hash is
        missing counts here, where ``waiting`` skips it.
        """
        return int(await self._redis.zcard(self.queue_key(queue)))

    async def all_waiting(self, queues: Iterable[str]) -> list[WaitingCall]:
        """Waiting calls of all ``queues`` (the snapshot ``acd.routing.best_call`` reads).

        One round trip per queue and per call; ``snapshot_waiting`` reads the same in one.
        """
        return [call for queue in sorted(set(queues)) for call in await self.waiting(queue)]

    async def snapshot_waiting(self, queues: Iterable[str]) -> list[WaitingCall]:
        """What ``all_waiting`` returns (queues by name, each in line order), in one round trip.

        One Lua script reads every queue's line and every call's hash, so the snapshot is also
        consistent: no claim lands between two reads. Redis serves nobody else meanwhile; the read
        grows with the number of waiting calls (a thousand is a few milliseconds). The call keys
        are built inside the script, so every key must live on one Redis (no Redis Cluster).

        Example::

            waiting = await live.snapshot_waiting(config.queues)
            decision = best_call(operator, waiting, now=clock())
        """
        names = sorted(set(queues))
        if not names:
            return []
        _, calls = await self._read_all([], names)
        return calls

    async def read_call_and_agents(
        self, call_id: str, agent_ids: Iterable[str]
    ) -> tuple[WaitingCall | None, dict[str, Agent]]:
        """The call if it is still waiting, and every agent of ``agent_ids`` Redis knows.

        ``route_call``'s snapshot, in one round trip: one script reads the call and the agents (pass
        those whose tiers and skills fit the call), so no claim lands between the two reads.

        Example::

            call, agents = await live.read_call_and_agents("c1", ["op1001", "op1002"])
        """
        ids = list(agent_ids)
        hashes, _ = await self._read_all([self.call_key(call_id), *map(self.agent_key, ids)], [])
        data = hashes[0]
        if not data:
            self._written.pop(call_id, None)  # gone: nothing left to route
        call = _call_from(call_id, data) if data.get("status") == "waiting" else None
        return call, {agent_id: _agent(agent_id, row) for agent_id, row in zip(ids, hashes[1:], strict=True) if row}

    async def read_agent_and_waiting(
        self, agent_id: str, queues: Iterable[str]
    ) -> tuple[Agent | None, list[WaitingCall]]:
        """The agent (None if unknown) and what ``snapshot_waiting(queues)`` returns, in one round trip.

        ``route_agent``'s snapshot. Example::

            agent, waiting = await live.read_agent_and_waiting("op1001", config.queues)
        """
        hashes, calls = await self._read_all([self.agent_key(agent_id)], sorted(set(queues)))
        return (_agent(agent_id, hashes[0]) if hashes[0] else None), calls

    async def _read_all(
        self, hash_keys: list[str], queues: list[str]
    ) -> tuple[list[dict[str, str]], list[WaitingCall]]:
        """Whole hashes, then every waiting call of ``queues`` (names, in this order): one script."""
        raw = await self._read(
            keys=[*hash_keys, *(self.queue_key(name) for name in queues)], args=[len(hash_keys), self.call_key("")]
        )
        hashes, calls = json.loads(raw)
        return (
            [_fields(flat) for flat in _rows(hashes)],
            [_call_from(call_id, _fields(flat)) for call_id, flat in _rows(calls)],
        )

    async def _call_queue(self, call_id: str) -> str | None:
        queue = _text(await self._redis.hget(self.call_key(call_id), "queue"))
        return queue or None

    async def _get_call(self, call_id: str) -> WaitingCall | None:
        raw = await self._redis.hgetall(self.call_key(call_id))
        return _waiting_call(call_id, raw) if raw else None

    # --- claims ------------------------------------------------------------------------------

    async def claim(
        self,
        agent_id: str,
        call_id: str,
        controller_id: str,
        fencing_token: str | None = None,
        *,
        now: float,
        queue: str | None = None,
        notify: tuple[str, str] | None = None,
        lease: tuple[str, str] | None = None,
    ) -> bool:
        """Atomically give ``call_id`` to ``agent_id``; ``False`` if either is no longer free.

        Succeeds only if the agent is ``ready``, registered and holds no call, and the call is still
        waiting in its queue. Then the agent becomes ``ringing`` with the call, and the call leaves
        its line. Losing is normal under contention: route again on a fresh snapshot.

        ``queue`` is the call's queue as the caller's snapshot saw it: it saves the round trip
        that looks it up, and the claim fails if the call has moved to another queue since.
        ``notify`` is a ``(channel, message)`` the same script publishes if the claim wins: an offer
        reaches the controller that owns the call within the claim's round trip. ``lease`` is the
        claimer's ``(lease key, value)`` (``unico.lease``): the claim fails, and ``LeaseLost`` is
        raised, when Redis holds another value there (the claimer was fenced off).
        """
        queue = queue or await self._call_queue(call_id)
        if queue is None:
            return False
        keys = [self.agent_key(agent_id), self.call_key(call_id), self.queue_key(queue)]
        if lease is not None:
            keys.append(lease[0])
        result = await self._claim(
            keys=keys,
            args=[
                agent_id,
                call_id,
                controller_id,
                fencing_token or "",
                repr(now),
                queue,
                self.events_channel,
                lease[1] if lease is not None else "",
                *(notify or ()),
            ],
        )
        if result == -1:
            raise LeaseLost(f"claim of {call_id} for {agent_id} refused: {lease[0] if lease else ''} is another's")
        if result == 1:
            self._changed(AgentChange(agent_id, AgentState.RINGING, None, call_id, now))
        return bool(result)

    async def claim_best_agent(
        self,
        call: WaitingCall,
        groups: Sequence[Sequence[str]],
        claimer: str,
        *,
        now: float,
        lease: tuple[str, str] | None = None,
        fencing_token: str | None = None,
    ) -> AgentPick:
        """Claim the best free operator of ``groups`` for ``call``: a routing decision in one round trip.

        ``call`` is the call as this process wrote it (``written_call``); ``groups`` are the operators
        who fit it, best rank first (``acd.routing.rank_operators``). One script checks the call is
        still waiting, still this process's (``claimer``) and still as written, then takes, within the
        first group holding a free operator, the one idle longest, and claims the pair as ``claim``
        does. ``Pick.FOREIGN`` and ``Pick.STALE`` ask for the two-trip way (``read_call_and_agents``,
        then ``claim``); a lease held by another raises ``LeaseLost``.

        Example::

            pick = await live.claim_best_agent(call, [["op1003"], ["op1001", "op1002"]], "ctl-a", now=clock())
            if pick.status is Pick.WON:
                ...  # ring pick.agent_id
        """
        candidates = [agent_id for group in groups for agent_id in group]
        keys = [self.call_key(call.call_id), self.queue_key(call.queue), lease[0] if lease else self.call_key("")]
        result = await self._route_call(
            keys=keys,
            args=[
                call.call_id,
                claimer,
                fencing_token or "",
                repr(now),
                call.queue,
                self.events_channel,
                lease[1] if lease is not None else "",
                self._routes_signature(call),
                self.agent_key(""),
                " ".join(candidates),
                len(groups),
                *(len(group) for group in groups),
            ],
        )
        code = int(result[0])
        if code == -1:
            raise LeaseLost(f"routing of {call.call_id} refused: {lease[0] if lease else ''} is another's")
        if code != 1:
            return AgentPick({0: Pick.GONE, 2: Pick.NOBODY, -2: Pick.FOREIGN, -3: Pick.STALE}[code])
        agent_id = _text(result[1])
        self._changed(AgentChange(agent_id, AgentState.RINGING, None, call.call_id, now))
        return AgentPick(Pick.WON, agent_id, float(_text(result[2])), int(result[3]))

    @staticmethod
    def _routes_signature(call: WaitingCall) -> str:
        """The call's tier, levels, overflow routes and preferred operator as ``add_call`` stores them."""
        fields = LiveState._call_fields(call)
        return "\n".join((fields["tier"], fields["requirements"], fields["also"], fields["preferred"]))

    async def claim_best_call(
        self,
        agent_id: str,
        tiers: Iterable[str],
        skills: Mapping[str, int],
        queues: Iterable[str],
        claimer: str,
        *,
        now: float,
        channel_prefix: str,
        lease: tuple[str, str] | None = None,
    ) -> CallPick:
        """Claim the most urgent waiting call of ``queues`` that ``agent_id`` can serve, in one round trip.

        ``tiers`` and ``skills`` are the operator's (from the roster). One script checks the operator
        is free, walks every waiting call of ``queues`` in line order, keeps the one
        ``acd.routing.best_call`` would choose, and claims the pair as ``claim`` does. A call
        owned by another controller is claimed for it, and its offer published on
        ``channel_prefix + owner`` in the same script (``{"type": "offer", "call", "agent",
        "servable"}``). A lease held by another raises ``LeaseLost``.

        Example::

            pick = await live.claim_best_call("op1003", ["general"], {"pacchi": 5}, config.queues, "ctl-a",
                                              now=clock(), channel_prefix="unico:ctl:")
        """
        operator = json.dumps({"tiers": {tier: True for tier in tiers}, "skills": dict(skills)})
        names = sorted(set(queues))
        result = await self._route_agent(
            keys=[self.agent_key(agent_id), lease[0] if lease else self.agent_key(""), *map(self.queue_key, names)],
            args=[
                agent_id,
                claimer,
                repr(now),
                self.events_channel,
                lease[1] if lease is not None else "",
                self.call_key(""),
                operator,
                channel_prefix,
            ],
        )
        code = int(result[0])
        if code == -1:
            raise LeaseLost(f"routing for {agent_id} refused: {lease[0] if lease else ''} is another's")
        if code != 1:
            return CallPick(Pick.GONE if code == 0 else Pick.NOBODY)
        call_id = _text(result[1])
        names_ = ("owner", "queue", "priority", "enqueued_at", "tier", "requirements", "also", "preferred")
        call = _call_from(call_id, dict(zip(names_, map(_text, result[3:11]), strict=True)))
        self._changed(AgentChange(agent_id, AgentState.RINGING, None, call_id, now))
        return CallPick(Pick.WON, call, int(result[2]))

    async def count_logged_in(self, agent_ids: Iterable[str], *, up_to: int = 0) -> int:
        """How many of ``agent_ids`` are logged in (any state but ``logged_out``), in one round trip;
        with ``up_to``, Redis stops reading at that many (``up_to=1``: is anyone logged in?).

        Example::

            if not await live.count_logged_in(fitting, up_to=1):
                ...  # nobody could ever take the call: unavailable treatment
        """
        ids = list(agent_ids)
        if not ids:
            return 0
        return int(await self._count_logged_in(keys=[], args=[max(0, up_to), self.agent_key(""), " ".join(ids)]))

    async def release(
        self,
        agent_id: str,
        call_id: str,
        controller_id: str,
        fencing_token: str | None = None,
        *,
        now: float,
        agent_state: AgentState = AgentState.NOT_READY,
        reason: NotReadyReason | None = NotReadyReason.RING_NO_ANSWER,
        requeue: bool = True,
    ) -> bool:
        """Undo a claim made by the same controller (and token); ``False`` if it is not theirs.

        The agent goes to ``agent_state`` (by default ``not_ready(ring_no_answer)``). With ``requeue``
        the call goes back to the head of its line with its original enqueue time, so it keeps its
        place; without (the caller hung up while ringing) the call is forgotten.
        """
        queue = await self._call_queue(call_id)
        if queue is None:
            return False
        result = await self._release(
            keys=[self.agent_key(agent_id), self.call_key(call_id), self.queue_key(queue)],
            args=[
                agent_id,
                call_id,
                controller_id,
                fencing_token or "",
                repr(now),
                queue,
                agent_state.value,
                reason.value if reason is not None else "",
                "1" if requeue else "0",
                self.events_channel,
            ],
        )
        if result:
            self._changed(AgentChange(agent_id, agent_state, reason, None, now))
            if not requeue:
                self._written.pop(call_id, None)
        return bool(result)

    # --- rebuild -----------------------------------------------------------------------------

    async def keys(self) -> list[str]:
        """Every key under this prefix (for rebuilds and for tests that check nothing leaked)."""
        return sorted([_text(key) async for key in self._redis.scan_iter(match=f"{self.prefix}*", count=500)])

    async def wipe(self) -> int:
        """Delete every key under this prefix; a rebuild after a Redis restart starts here."""
        self._written.clear()
        keys = await self.keys()
        if keys:
            await self._redis.delete(*keys)
        return len(keys)
