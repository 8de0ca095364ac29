"""The ACD at run time: operator states, routing decisions and offers, shared through Redis.

Theory of operation
-------------------
Queueing, agent state and routing live here and in Redis (``acd.live.LiveState``), not in
app_queue. Each controller process runs one ``AcdService``; several processes (sites) may share one
Redis. A caller's channel belongs to the process whose ARI app holds it, its **owner**: only the
owner plays to it, rings operators for it and bridges it (``unico.queued_call``).

Routing is event driven, never polled:

* a call enters a queue (or escalates, or comes back after ring-no-answer): ``route_call`` picks the
  best ready operator (``acd.routing.best_operator``) and claims the pair atomically in Redis;
* an operator becomes ready (login, ready, end of wrap-up, softphone back): ``route_agent`` picks
  the waiting call with the highest priority, then the longest wait, across every queue the operator
  can serve (``acd.routing.best_call``), and claims it.

A won claim becomes an ``Offer`` delivered to the call's owner: straight into the call's actor when
the owner is this process, else over Redis pub/sub (``<prefix>ctl:<owner>``). Lost claims are normal
under contention and simply route again on a fresh snapshot. A one-second sweep heals stuck states
(a lost timer, a dead owner) and re-routes ready operators as a safety net for a lost message.

Agent changes go through ``acd.agents.apply`` and a compare-and-set on the stored state. While an
operator holds a call (ringing or talking) only the call's owner changes their state: a pause or a
logout arriving meanwhile is forwarded to the owner, which cancels the ringing and puts the call
back at the head of its line.

Every decision is logged with its reason; the owner writes it into the contact record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from acd.agents import (
    Agent,
    AgentState,
    Event,
    Force,
    Hangup,
    HealLimits,
    IllegalTransition,
    Login,
    Logout,
    NotReadyReason,
    Pause,
    Ready,
    Registered,
    RingTimeout,
    Unregistered,
    WrapupDone,
    apply,
    heal,
)
from acd.live import AgentChange, LeaseLost, LiveState, Pick
from acd.queues import QueueSpec, requirements_at
from acd.roster import OperatorSpec
from acd.routing import (
    OperatorView,
    Route,
    RoutingStrategy,
    WaitingCall,
    best_operator,
    call_reason,
    can_serve,
    operator_reason,
    rank_operators,
)
from ivr.config import IvrConfig
from unico.cancel import raise_if_cancelled

log = logging.getLogger(__name__)

#: handle time assumed for estimated-wait announcements until a queue has history (seconds)
DEFAULT_HANDLE_TIME = 180.0
#: seconds an operator may be on a call without an owner in Redis before the sweep frees them (a
#: controller that rebuilds after a Redis restart writes its owners back within a sweep or two)
ORPHAN_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Offer:
    """A claim won: ring ``agent_id`` for ``call_id`` (delivered to the call's owner)."""

    call_id: str
    agent_id: str
    reason: str
    #: how many waiting calls the operator could serve, when another controller chose the call
    #: inside Redis (``LiveState.claim_best_call``) and left the reason to the owner
    servable: int | None = None


@dataclass(frozen=True, slots=True)
class AgentInterrupt:
    """The operator paused, logged out or lost their softphone while holding ``call_id``."""

    call_id: str
    agent_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Move the caller of ``call_id`` to ``queue`` or hand them to ``operator`` (by the operator)."""

    call_id: str
    queue: str | None = None
    operator: str | None = None
    by: str = ""


@dataclass(frozen=True, slots=True)
class MonitorRequest:
    """A supervisor asks to ``listen``, ``whisper`` or ``barge`` into the conversation of
    ``call_id``, or to ``stop``; the call's owner does it on its Asterisk (``unico.supervision``)."""

    call_id: str
    supervisor: str
    mode: str
    by: str = ""


CallMessage = Offer | AgentInterrupt | TransferRequest | MonitorRequest


class UnknownAgent(LookupError):
    """No operator with this id in the roster."""


class AcdService:
    """One process's ACD: see the module docstring.

    ``deliver(call_id, message)`` hands a message to a local call's actor and returns False when
    this process has no such call.
    """

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        prefix: str,
        controller_id: str,
        config: Callable[[], IvrConfig],
        deliver: Callable[[str, CallMessage], bool],
        clock: Callable[[], float] = time.time,
        heal_limits: HealLimits | None = None,
        sweep_interval: float = 1.0,
        on_agent: Callable[[AgentChange], None] | None = None,
        lease: Callable[[], tuple[str, str] | None] | None = None,
        on_redis_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        #: ``(lease key, value)`` while this process holds its app's lease, else None; None for
        #: ``lease`` itself means no lease is used (``unico.lease``)
        self.lease = lease
        #: Redis lost its data (restarted without persistence): write back what this process knows
        self.on_redis_lost = on_redis_lost
        self._epoch = ""
        self.rebuilds = 0
        self.live = LiveState(redis, prefix, on_agent=on_agent)
        self.prefix = prefix
        self.controller_id = controller_id
        self._config = config
        self._deliver = deliver
        self.clock = clock
        self.heal_limits = heal_limits or HealLimits()
        self.sweep_interval = sweep_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._wrapups: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self.decisions = 0
        self.claims_lost = 0
        self._fitting_config: IvrConfig | None = None
        self._fitting_cache: dict[tuple[tuple[str, tuple[tuple[str, int], ...]], ...], dict[str, OperatorSpec]] = {}
        self._rank_cache: dict[tuple[Any, ...], list[list[str]]] = {}
        #: routing decisions made in one Redis round trip, and those that took the two-trip way
        self.decisions_one_trip = 0
        self.decisions_fallback = 0

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def config(self) -> IvrConfig:
        return self._config()

    def channel_for(self, controller_id: str) -> str:
        return f"{self.prefix}ctl:{controller_id}"

    async def start(self) -> None:
        await self.redis.ping()
        self._epoch = await self.live.epoch()
        await self.sync_roster()
        self._pubsub = self.redis.pubsub()
        await self._pubsub.subscribe(self.channel_for(self.controller_id))
        self._background = [
            asyncio.create_task(self._listen(), name="acd-listen"),
            asyncio.create_task(self._sweep(), name="acd-sweep"),
        ]

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._background = []
        for handle in self._wrapups.values():
            handle.cancel()
        self._wrapups.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    def spawn(self, coro: Any, name: str) -> None:
        """Run ``coro`` in the background, logging its failure (routing after a state change)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("acd: %s failed", name, exc_info=t.exception())

        task.add_done_callback(done)

    # --- roster and agents ----------------------------------------------------------------------

    async def sync_roster(self) -> None:
        """Every roster operator has a live state (logged out at first); removed ones are dropped."""
        roster = self.config.operators
        known = await self.live.agents(roster)
        now = self.clock()
        for agent_id in roster:
            if agent_id not in known:
                await self.live.set_agent(Agent.new(agent_id, now=now))
        for agent_id in await self.live.agent_ids():
            if agent_id not in roster:
                agent = await self.live.get_agent(agent_id)
                if agent is None or agent.call_id is None:
                    await self.live.remove_agent(agent_id)

    def _lock(self, agent_id: str) -> asyncio.Lock:
        return self._locks.setdefault(agent_id, asyncio.Lock())

    async def agent(self, agent_id: str) -> Agent:
        if agent_id not in self.config.operators:
            raise UnknownAgent(agent_id)
        agent = await self.live.get_agent(agent_id)
        if agent is None:
            agent = Agent.new(agent_id, now=self.clock())
            await self.live.set_agent(agent)
        return agent

    async def agent_event(
        self, agent_id: str, event: Event, *, by: str = "", only_from: AgentState | None = None
    ) -> Agent:
        """Apply an operator's own or a supervisor's action (login, ready, pause, ...), or a
        softphone registration change; route the operator if they became ready.

        Raises ``UnknownAgent`` or ``acd.agents.IllegalTransition`` (for example ``ready`` while
        logged out). While the operator holds a call the change goes to the call's owner. With
        ``only_from``, an operator found in another state is left as they are (a timer's event
        that came too late: the wrap-up already ended).
        """
        async with self._lock(agent_id):
            for _ in range(5):
                agent = await self.agent(agent_id)
                if only_from is not None and agent.state is not only_from:
                    return agent
                if isinstance(event, Login) and agent.state is not AgentState.LOGGED_OUT:
                    return agent  # logging in twice is harmless
                if agent.call_id is not None and agent.state in (AgentState.RINGING, AgentState.ON_CALL):
                    if isinstance(event, Login | Ready):
                        return agent  # already logged in and working
                    if agent.state is AgentState.RINGING and not isinstance(event, Registered):
                        await self.send(agent.call_id, AgentInterrupt(agent.call_id, agent_id, event))
                        log.info("agent %s: %s while ringing, handed to the call's owner", agent_id, event.kind)
                        return agent
                    if isinstance(event, Registered | Unregistered):
                        new, _ = apply(agent, event, self.clock())
                        if new == agent:
                            # still registered: Asterisk reports the endpoint on each change of its
                            # channels (the operator's leg comes and goes), not only on registration
                            return agent
                        if await self.live.set_agent(new, expected=agent.state):
                            return new
                        continue
                    raise IllegalTransition(agent_id, agent.state, event.kind, "the operator is on a call")
                new, _effects = apply(agent, event, self.clock())
                if new == agent:
                    return agent
                if await self.live.set_agent(new, expected=agent.state):
                    self._log_change(agent, new, event, by)
                    if agent.state is AgentState.WRAP_UP and new.state is not AgentState.WRAP_UP:
                        self._cancel_wrapup(agent_id)
                    if new.state is AgentState.READY and agent.state is not AgentState.READY:
                        self.spawn(self.route_agent(agent_id), f"route-agent-{agent_id}")
                    return new
            raise RuntimeError(f"agent {agent_id}: state kept changing, gave up")

    def _log_change(self, old: Agent, new: Agent, event: Event, by: str) -> None:
        reason = f" ({new.reason.value})" if new.reason is not None else ""
        who = f" by {by}" if by else ""
        if (old.state, old.reason) == (new.state, new.reason):
            log.info("agent %s: %s, still %s%s", old.id, event.kind.value, new.state.value, reason)
            return
        log.info("agent %s: %s -> %s%s on %s%s", old.id, old.state.value, new.state.value, reason, event.kind, who)

    async def registration(self, agent_id: str, online: bool) -> None:
        """The softphone registered or went away (ARI endpoint state)."""
        if agent_id not in self.config.operators:
            return
        try:
            await self.agent_event(agent_id, Registered() if online else Unregistered(), by="softphone")
        except IllegalTransition as exc:  # pragma: no cover - every state accepts (un)registered
            log.warning("agent %s: %s", agent_id, exc)

    async def owner_update(self, agent: Agent, new: Agent) -> bool:
        """The call's owner moves an operator holding (or leaving) its call: compare-and-set."""
        ok = await self.live.set_agent(new, expected=agent.state)
        if ok and new.state is AgentState.READY:
            self.spawn(self.route_agent(new.id), f"route-agent-{new.id}")
        return ok

    # --- wrap-up --------------------------------------------------------------------------------

    def start_wrapup(self, agent_id: str, seconds: float) -> None:
        self._cancel_wrapup(agent_id)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._wrapups.pop(agent_id, None)
            self.spawn(self._end_wrapup(agent_id), f"wrapup-{agent_id}")

        self._wrapups[agent_id] = loop.call_later(max(0.0, seconds), fire)

    def _cancel_wrapup(self, agent_id: str) -> None:
        handle = self._wrapups.pop(agent_id, None)
        if handle is not None:
            handle.cancel()

    async def _end_wrapup(self, agent_id: str) -> None:
        # one read of the operator, inside agent_event (there was one more here, for every call)
        with contextlib.suppress(IllegalTransition, UnknownAgent):
            await self.agent_event(agent_id, WrapupDone(), by="wrap-up timer", only_from=AgentState.WRAP_UP)

    # --- routing --------------------------------------------------------------------------------

    async def operator_views(self, serving: WaitingCall | None = None) -> list[OperatorView]:
        """Every roster operator Redis knows, in one round trip (``best_operator``'s snapshot).

        With ``serving``, only the operators whose tiers and skills fit the call (``can_serve`` on
        the roster entry): the others could never be chosen, so their live state is not read.
        """
        roster = self.config.operators if serving is None else self._fitting(serving)
        agents = await self.live.agents(roster)
        return [_view(agent_id, spec, agents[agent_id]) for agent_id, spec in roster.items() if agent_id in agents]

    async def operator_view(self, agent_id: str) -> OperatorView | None:
        """One operator's view (what ``operator_views`` holds for them), in one round trip."""
        spec = self.config.operators.get(agent_id)
        if spec is None:
            return None
        agent = (await self.live.agents([agent_id])).get(agent_id)
        return _view(agent_id, spec, agent) if agent is not None else None

    def _fitting(self, call: WaitingCall) -> dict[str, OperatorSpec]:
        """Roster operators whose tiers and skills fit ``call`` (``can_serve``): the only ones whose
        live state a decision for it reads. Kept per set of routes until the config changes."""
        config = self.config
        if self._fitting_config is not config:
            self._fitting_config, self._fitting_cache, self._rank_cache = config, {}, {}
        key = tuple((route.tier, tuple(sorted(route.requirements.items()))) for route in call.routes())
        fitting = self._fitting_cache.get(key)
        if fitting is None:
            fitting = {agent_id: spec for agent_id, spec in config.operators.items() if can_serve(spec, call)}
            self._fitting_cache[key] = fitting
        return fitting

    def _ranked(self, call: WaitingCall, strategy: RoutingStrategy) -> list[list[str]]:
        """``rank_operators`` for ``call``: kept per routes, strategy and preferred operator until the
        config changes."""
        fitting = self._fitting(call)  # resets the caches on a new config
        key = (tuple((r.tier, tuple(sorted(r.requirements.items()))) for r in call.routes()), strategy, call.preferred)
        groups = self._rank_cache.get(key)
        if groups is None:
            groups = rank_operators(call, fitting, strategy)
            self._rank_cache[key] = groups
        return groups

    def _strategy(self, queue: str) -> RoutingStrategy:
        spec = self.config.queues.get(queue)
        return RoutingStrategy(spec.strategy if spec is not None else "best_skill")

    async def route_call(self, call_id: str) -> bool:
        """Offer a waiting call to the best ready operator; False if nobody eligible is ready.

        One Redis round trip when this process wrote the call (its owner routes it: the usual case):
        the operators who fit it, in rank groups (``acd.routing.rank_operators``, from the roster),
        go to one script that picks the free one idle longest and claims the pair
        (``LiveState.claim_best_agent``). A call another controller owns, or one escalated since it
        was written here, takes two: one script reads the call and the live state of the operators
        who fit it, ``acd.routing.best_operator`` chooses, one script claims.
        """
        hint = self.live.written_call(call_id)
        if hint is not None and hint.owner == self.controller_id:
            allowed, lease = self._lease_now()
            if not allowed:
                return False
            strategy = self._strategy(hint.queue)
            try:
                pick = await self.live.claim_best_agent(
                    hint, self._ranked(hint, strategy), self.controller_id, now=self.clock(), lease=lease
                )
            except LeaseLost as exc:
                log.error("routing: %s", exc)
                return False
            if pick.status is Pick.WON:
                self.decisions_one_trip += 1
                spec = self.config.operators[pick.agent_id]
                chosen = OperatorView(
                    id=pick.agent_id,
                    tiers=frozenset(spec.tiers),
                    skills=spec.skills,
                    state=AgentState.RINGING,
                    idle_since=pick.idle_since,
                    registered=True,
                )
                reason = operator_reason(chosen, hint, strategy, eligible=pick.free, now=self.clock())
                self._won(Offer(call_id, pick.agent_id, reason), local=True)
                return True
            if pick.status in (Pick.GONE, Pick.NOBODY):
                return False
        self.decisions_fallback += 1
        for _ in range(10):
            if hint is None:  # written by another process: one more round trip to learn its routes
                hint = await self.live.get_waiting_call(call_id)
                if hint is None:
                    return False
            fitting = self._fitting(hint)
            call, agents = await self.live.read_call_and_agents(call_id, fitting)
            if call is None:
                return False
            if call.routes() != hint.routes():
                hint = call  # escalated since it was written here: read the operators who fit now
                continue
            strategy = self._strategy(call.queue)
            views = [_view(agent_id, fitting[agent_id], agent) for agent_id, agent in agents.items()]
            decision = best_operator(call, views, strategy, now=self.clock())
            if decision is None:
                return False
            if await self._claim(decision.choice, call, decision.reason):
                return True
            hint = call
        return False

    async def route_agent(self, agent_id: str) -> bool:
        """Give a freed operator the most urgent waiting call they can serve, across all queues.

        One Redis round trip: a script walks every waiting call, keeps the one
        ``acd.routing.best_call`` would choose for the operator's tiers and skills, and claims the
        pair (``LiveState.claim_best_call``); a call another controller owns hears of its offer from
        the same script.
        """
        spec = self.config.operators.get(agent_id)
        if spec is None:
            return False
        allowed, lease = self._lease_now()
        if not allowed:
            return False
        try:
            pick = await self.live.claim_best_call(
                agent_id,
                spec.tiers,
                spec.skills,
                self.config.queues,
                self.controller_id,
                now=self.clock(),
                channel_prefix=self.channel_for(""),
                lease=lease,
            )
        except LeaseLost as exc:
            log.error("routing: %s", exc)
            return False
        if pick.status is not Pick.WON or pick.call is None:
            return False
        self.decisions_one_trip += 1
        call = pick.call
        reason = call_reason(spec, call, servable=pick.servable, now=self.clock(), operator_id=agent_id)
        self._won(Offer(call.call_id, agent_id, reason), local=call.owner in ("", self.controller_id))
        return True

    def _lease_now(self) -> tuple[bool, tuple[str, str] | None]:
        """May this process claim, and the lease to present (None without leases): a standby, or a
        controller fenced off, holds none and offers nothing."""
        if self.lease is None:
            return True, None
        lease = self.lease()
        return lease is not None, lease

    def _won(self, offer: Offer, *, local: bool) -> None:
        self.decisions += 1
        log.info("routing: call %s -> %s because %s", offer.call_id, offer.agent_id, offer.reason)
        if local:
            self._deliver(offer.call_id, offer)

    def _explain(self, offer: Offer) -> Offer:
        """An offer another controller chose inside Redis comes without its reason: written here,
        where the call and the roster are known."""
        if offer.reason:
            return offer
        call = self.live.written_call(offer.call_id)
        spec = self.config.operators.get(offer.agent_id)
        if call is None or spec is None:
            return replace(offer, reason=f"{offer.call_id} for {offer.agent_id} (chosen by another controller)")
        reason = call_reason(spec, call, servable=offer.servable or 1, now=self.clock(), operator_id=offer.agent_id)
        return replace(offer, reason=reason)

    async def claim_for(self, agent_id: str, call: WaitingCall, reason: str) -> bool:
        """Offer ``call`` to one named operator (a blind transfer); False if they are not free."""
        return await self._claim(agent_id, call, reason)

    async def _claim(self, agent_id: str, call: WaitingCall, reason: str) -> bool:
        owner = call.owner or self.controller_id
        offer = Offer(call.call_id, agent_id, reason)
        # another controller's call hears of its offer from the claim script: no second round trip
        notify = None if owner == self.controller_id else (self.channel_for(owner), _encode(offer))
        allowed, lease = self._lease_now()
        if not allowed:
            return False
        try:
            won = await self.live.claim(
                agent_id, call.call_id, owner, now=self.clock(), queue=call.queue, notify=notify, lease=lease
            )
        except LeaseLost as exc:
            log.error("routing: %s", exc)
            return False
        if not won:
            self.claims_lost += 1
            return False
        self._won(offer, local=notify is None)
        return True

    async def send(self, call_id: str, message: CallMessage, owner: str | None = None) -> bool:
        """Deliver ``message`` to the process that owns ``call_id`` (this one or another)."""
        owner = owner or await self.live.owner(call_id)
        if owner is None:
            return False
        if owner == self.controller_id:
            return self._deliver(call_id, message)
        await self.redis.publish(self.channel_for(owner), _encode(message))
        return True

    async def _listen(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis blips must not end the listener
                log.warning("acd: pub/sub read failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            raise_if_cancelled()
            if message is None:
                continue
            try:
                item = _decode(message["data"])
                if isinstance(item, Offer):
                    item = self._explain(item)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("acd: bad message on %s: %s", self.channel_for(self.controller_id), exc)
                continue
            if not self._deliver(item.call_id, item) and isinstance(item, Offer):
                # the caller left before the offer arrived: free the operator at once
                await self.release_offer(item.agent_id, item.call_id, requeue=False, agent_state=AgentState.READY)

    async def release_offer(
        self,
        agent_id: str,
        call_id: str,
        *,
        requeue: bool,
        agent_state: AgentState,
        reason: NotReadyReason | None = None,
    ) -> bool:
        """Undo a claim this process owns; a freed ready operator is routed again."""
        ok = await self.live.release(
            agent_id,
            call_id,
            self.controller_id,
            now=self.clock(),
            agent_state=agent_state,
            reason=reason,
            requeue=requeue,
        )
        if ok and agent_state is AgentState.READY:
            self.spawn(self.route_agent(agent_id), f"route-agent-{agent_id}")
        return ok

    # --- queue helpers for the call side --------------------------------------------------------

    def waiting_call(
        self,
        call_id: str,
        spec: QueueSpec,
        queue: str,
        *,
        priority: int,
        enqueued_at: float,
        waited: float,
        preferred: str | None = None,
    ) -> WaitingCall:
        skills, overflow = requirements_at(spec, waited)
        also: list[Route] = []
        if overflow is not None:
            if overflow.kind == "tier":
                # the tier above takes what its own operators can: no minimum levels any more
                also.append(Route(overflow.name, {}))
            else:
                target = self.config.queues.get(overflow.name)
                if target is not None:
                    also.append(Route(target.tier, dict(target.required_skills)))
        return WaitingCall(
            call_id=call_id,
            queue=queue,
            priority=priority,
            enqueued_at=enqueued_at,
            requirements=skills,
            tier=spec.tier,
            also=tuple(also),
            owner=self.controller_id,
            preferred=preferred if spec.prefer_last_operator else None,
        )

    async def could_serve(self, call: WaitingCall, spec: QueueSpec, *, up_to: int = 0) -> int:
        """How many logged-in operators could ever take this call (at its final escalation step);
        with ``up_to``, counted no further than that (``up_to=1``: could anyone?)."""
        final = self.waiting_call(
            call.call_id, spec, call.queue, priority=call.priority, enqueued_at=call.enqueued_at, waited=1e9
        )
        first = WaitingCall(
            call_id=call.call_id,
            queue=call.queue,
            priority=call.priority,
            enqueued_at=call.enqueued_at,
            requirements=call.requirements,
            tier=call.tier,
            also=final.also,
        )
        # only the operators who fit are looked at, inside Redis (one round trip), not the whole roster
        return await self.live.count_logged_in({**self._fitting(final), **self._fitting(first)}, up_to=up_to)

    async def position(self, call_id: str, queue: str) -> int | None:
        """1-based place of a waiting call in its line (priority first, then arrival)."""
        line = sorted(await self.live.snapshot_waiting([queue]), key=lambda c: (-c.priority, c.enqueued_at, c.call_id))
        return next((i for i, c in enumerate(line, start=1) if c.call_id == call_id), None)

    # --- healing --------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                log.warning("acd: sweep failed: %s", exc)
            raise_if_cancelled()

    async def check_epoch(self) -> bool:
        """True (once) when Redis lost its data since the last look; the lost state is then
        written back: the roster's operators, then what ``on_redis_lost`` knows."""
        epoch = await self.live.epoch()
        if epoch == self._epoch:
            return False
        log.warning("acd: Redis lost the live state (epoch %s -> %s): rebuilding", self._epoch, epoch)
        self._epoch = epoch
        self.rebuilds += 1
        if self.on_redis_lost is not None:
            await self.on_redis_lost()
        await self.sync_roster()
        return True

    async def sweep(self) -> None:
        """Heal stuck states and re-route ready operators (a safety net, not the routing path)."""
        await self.check_epoch()
        now = self.clock()
        agents = await self.live.agents(self.config.operators)
        await self._heal_orphans(agents.values(), now)
        anyone_waiting: bool | None = None
        for agent in agents.values():
            event = heal(agent, now, self._limits_for(agent))
            if event is not None:
                await self._heal(agent, event)
            elif agent.state is AgentState.READY and agent.registered:
                if anyone_waiting is None:  # read once per sweep; nobody waiting, nothing to route
                    anyone_waiting = bool(await self.live.snapshot_waiting(self.config.queues))
                if anyone_waiting:
                    await self.route_agent(agent.id)

    async def _heal_orphans(self, agents: Iterable[Agent], now: float) -> None:
        """An operator on a call no controller holds (its owner entry is gone: the call ended
        while Redis or its controller lost track) goes to wrap-up after a grace period."""
        talking = [a for a in agents if a.state is AgentState.ON_CALL and a.call_id and now - a.since > ORPHAN_GRACE]
        if not talking:
            return
        owners = await self.live.owners_of(a.call_id for a in talking if a.call_id)
        for agent in talking:
            if agent.call_id in owners:
                continue
            log.warning("agent %s: on call %s that no controller holds, healing", agent.id, agent.call_id)
            new, _ = apply(agent, Hangup(wrapup_s=0), self.clock())
            if await self.live.set_agent(new, expected=agent.state):
                self.start_wrapup(agent.id, 0)

    def _limits_for(self, agent: Agent) -> HealLimits:
        """The longest ring and wrap-up any queue allows, plus the grace: beyond that, stuck."""
        queues = self.config.queues.values()
        grace = self.heal_limits.grace_s
        return HealLimits(
            ring_timeout_s=float(max((q.ring_timeout + 2 for q in queues), default=15)),
            grace_s=grace,
            max_wrapup_s=float(max((q.wrapup for q in queues), default=0)) + grace,
        )

    async def _heal(self, agent: Agent, event: Event) -> None:
        if isinstance(event, WrapupDone):
            if agent.id in self._wrapups:
                return  # our own timer is still running
            log.warning("agent %s: wrap-up overran, healing", agent.id)
            with contextlib.suppress(IllegalTransition):
                await self.agent_event(agent.id, event, by="heal")
            return
        if isinstance(event, RingTimeout) and agent.call_id is not None:
            owner = await self.live.owner(agent.call_id)
            if owner == self.controller_id and self._deliver(
                agent.call_id, AgentInterrupt(agent.call_id, agent.id, event)
            ):
                return
            log.warning("agent %s: ringing for call %s with no live owner, healing", agent.id, agent.call_id)
            await self.live.release(
                agent.id, agent.call_id, owner or "", now=self.clock(), reason=NotReadyReason.RING_NO_ANSWER
            )
            return
        new, _ = apply(agent, event, self.clock())
        log.warning("agent %s: stuck in %s, healing to %s", agent.id, agent.state.value, new.state.value)
        await self.live.set_agent(new, expected=agent.state)


def _view(agent_id: str, spec: OperatorSpec, agent: Agent) -> OperatorView:
    return OperatorView(
        id=agent_id,
        tiers=frozenset(spec.tiers),
        skills=spec.skills,
        state=agent.state,
        idle_since=max(agent.since, agent.last_call_end or 0.0),
        registered=agent.registered,
    )


# --- pub/sub encoding ---------------------------------------------------------------------------

_EVENTS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "login": lambda d: Login(),
    "logout": lambda d: Logout(),
    "ready": lambda d: Ready(),
    "pause": lambda d: Pause(NotReadyReason(d["reason"])),
    "unregistered": lambda d: Unregistered(),
    "ring_timeout": lambda d: RingTimeout(),
    "force": lambda d: Force(AgentState(d["state"]), NotReadyReason(d.get("reason") or "supervisor")),
}


def _event_dict(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": event.kind.value}
    if isinstance(event, Pause):
        data["reason"] = event.reason.value
    if isinstance(event, Force):
        data["state"] = event.state.value
        data["reason"] = event.reason.value
    return data


def _encode(message: CallMessage) -> str:
    if isinstance(message, Offer):
        return json.dumps(
            {"type": "offer", "call": message.call_id, "agent": message.agent_id, "reason": message.reason}
        )
    if isinstance(message, AgentInterrupt):
        return json.dumps(
            {
                "type": "interrupt",
                "call": message.call_id,
                "agent": message.agent_id,
                "event": _event_dict(message.event),
            }
        )
    if isinstance(message, MonitorRequest):
        return json.dumps(
            {
                "type": "monitor",
                "call": message.call_id,
                "supervisor": message.supervisor,
                "mode": message.mode,
                "by": message.by,
            }
        )
    return json.dumps(
        {
            "type": "transfer",
            "call": message.call_id,
            "queue": message.queue,
            "operator": message.operator,
            "by": message.by,
        }
    )


def _decode(raw: str | bytes) -> CallMessage:
    data = json.loads(raw)
    kind = data["type"]
    if kind == "offer":
        servable = data.get("servable")
        return Offer(
            str(data["call"]),
            str(data["agent"]),
            str(data.get("reason") or ""),
            int(servable) if servable is not None else None,
        )
    if kind == "interrupt":
        event = data["event"]
        return AgentInterrupt(str(data["call"]), str(data["agent"]), _EVENTS[event["kind"]](event))
    if kind == "transfer":
        return TransferRequest(str(data["call"]), data.get("queue"), data.get("operator"), str(data.get("by", "")))
    if kind == "monitor":
        return MonitorRequest(str(data["call"]), str(data["supervisor"]), str(data["mode"]), str(data.get("by", "")))
    raise ValueError(f"unknown message type {kind!r}")


__all__ = [
    "DEFAULT_HANDLE_TIME",
    "AcdService",
    "AgentInterrupt",
    "CallMessage",
    "MonitorRequest",
    "Offer",
    "TransferRequest",
    "UnknownAgent",
]
