"""Route ARI events to per-call actors without ever blocking the websocket reader.

Theory of operation
-------------------
Asterisk keeps events of one object in order but interleaves objects freely (ari.md §1.2.3), and
drops a websocket client that stops reading (``websocket_write_timeout``). So:

* :meth:`Dispatcher.dispatch` is synchronous. It computes the event's routing key
  (:func:`channel_key`), resolves aliases, and ``put_nowait``\\ s the event on that key's queue.
* Each key has one **actor**: an unbounded ``asyncio.Queue`` plus a task that awaits the
  handler for one event at a time. Events of one call are handled in order; calls run in
  parallel; a slow call only grows its own queue.
* The first event of an unknown key asks the ``actor_factory`` for a handler. The factory may
  return ``None`` (drop the event): typically only ``StasisStart`` creates a call, so late
  ``PlaybackFinished`` / ``ChannelDestroyed`` after the call ended do not resurrect it.
* An actor ends when its handler returns :attr:`Outcome.FINISHED`. Its remaining queued events
  and its aliases are dropped, and the key becomes unknown again.
* Events without a key (``Connected``/``Disconnected``, endpoint and device state,
  ``ApplicationReplaced``) go to one **control** actor.
* After a ``Connected`` the control actor reconciles with Asterisk (lists channels, recovers or
  adopts calls). Keyed events that arrive meanwhile are **held** and released, in their order,
  once the control handler is done with the ``Connected``: a call's events never reach an actor
  factory before the reconciliation had the chance to start that call's actor (an operator
  answering a recovered call must find the call, not be hung up as a stray leg).
* A handler exception is logged with the key, counted, and the actor goes on with the next
  event: handlers are written to be idempotent (404 = already gone), and killing the actor would
  leave the channel parked in Stasis with nobody listening.

Secondary legs (agent channel, snoop channel, a queue bridge) are routed to the owning call's
actor with :meth:`Dispatcher.link`; a ``StasisStart`` whose ``replace_channel`` belongs to an
actor is linked to it automatically (blind transfer through Local channels).

Example::

    class Call:
        async def on_event(self, event: Event) -> Outcome | None:
            ...
            return Outcome.FINISHED if isinstance(event, StasisEnd) else None

    def factory(key: str, first: Event) -> EventHandler | None:
        return Call(key, rest).on_event if isinstance(first, StasisStart) else None

    dispatcher = Dispatcher(factory, control=on_control_event)
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .models import Connected, Event, StasisStart, channel_key

__all__ = [
    "ActorFactory",
    "ControlHandler",
    "Dispatcher",
    "DispatcherStats",
    "EventHandler",
    "Outcome",
]

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What a call handler returns; ``None`` means :attr:`CONTINUE`."""

    CONTINUE = "continue"
    FINISHED = "finished"


EventHandler: TypeAlias = Callable[[Event], Awaitable[Outcome | None]]
"""Handles one event of one call; return ``Outcome.FINISHED`` to end the actor."""

ActorFactory: TypeAlias = Callable[[str, Event], EventHandler | None]
"""``(key, first_event) -> handler``, or ``None`` to drop an event for an unknown key."""

ControlHandler: TypeAlias = Callable[[Event], Awaitable[None]]
"""Handles events that concern no call (Connected, Disconnected, endpoint/device state)."""

_CONTROL = "<control>"


@dataclass(frozen=True, kw_only=True, slots=True)
class DispatcherStats:
    live_actors: int
    actors_started: int
    actors_finished: int
    events_routed: int
    events_dropped: int
    max_queue_depth: int
    handler_errors: int


class _Actor:
    __slots__ = ("handler", "key", "queue", "task")

    def __init__(self, key: str, handler: EventHandler | ControlHandler) -> None:
        self.key = key
        self.handler = handler
        # ARI events, plus whatever the owner submits for itself (see Dispatcher.submit)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class Dispatcher:
    """Per-call ordered, cross-call parallel event dispatch. See the module docstring."""

    def __init__(
        self,
        actor_factory: ActorFactory,
        control: ControlHandler | None = None,
        *,
        name: str = "ari",
    ) -> None:
        self._factory = actor_factory
        self._control_handler = control
        self._name = name
        self._actors: dict[str, _Actor] = {}
        self._aliases: dict[str, str] = {}
        self._control: _Actor | None = None
        self._closed = False
        self._actors_started = 0
        self._actors_finished = 0
        self._events_routed = 0
        self._events_dropped = 0
        self._max_queue_depth = 0
        self._handler_errors = 0
        #: keyed events held while the control actor handles a ``Connected`` (see the module doc)
        self._held: list[Event] | None = None
        self.events_held = 0

    # --- routing ------------------------------------------------------------------------------

    def dispatch(self, event: Event, *, now: bool = False) -> None:
        """Queue ``event`` for its actor. Never awaits, never raises for a handler's sake.

        ``now`` skips the hold after a ``Connected``: for the events the reconciliation itself
        makes up (a parked channel adopted as a new call).
        """
        if self._closed:
            self._events_dropped += 1
            return
        key = channel_key(event)
        if key is None:
            if isinstance(event, Connected) and self._control_handler is not None and self._held is None:
                self._held = []
            self._to_control(event)
            return
        if self._held is not None and not now:
            self._held.append(event)
            self.events_held += 1
            return
        target = self._aliases.get(key, key)
        actor = self._actors.get(target)
        if actor is None and isinstance(event, StasisStart) and event.replace_channel is not None:
            replaced = self._aliases.get(event.replace_channel.id, event.replace_channel.id)
            if replaced in self._actors:
                self._aliases[key] = replaced
                actor = self._actors[replaced]
                log.info(
                    "%s: channel %s replaces %s in call %s",
                    self._name,
                    key,
                    event.replace_channel.id,
                    replaced,
                )
        if actor is None:
            actor = self._spawn(target, event)
            if actor is None:
                self._events_dropped += 1
                log.debug("%s: no actor for %s, dropped %s", self._name, key, type(event).__name__)
                return
        self._enqueue(actor, event)

    def submit(self, key: str, item: object) -> bool:
        """Queue one of our own events (a timer that fired, an action's result) for ``key``'s actor.

        It joins the same ordered stream as that call's ARI events, so a handler never sees its
        own timer overtake a hang-up. Returns False, and drops the item, when the call has no
        actor any more: its end already cleaned everything up.
        """
        actor = self._actors.get(self._aliases.get(key, key))
        if actor is None or self._closed:
            self._events_dropped += 1
            return False
        self._enqueue(actor, item)
        return True

    def start_actor(self, key: str, handler: EventHandler, first: object) -> bool:
        """Start ``key``'s actor with ``first`` as its first item (a call recovered by the
        reconciliation): it is handled before any held or later event of ``key``. False if
        ``key`` already has an actor."""
        if self._closed or key in self._actors:
            return False
        actor = _Actor(key, handler)
        actor.task = asyncio.create_task(self._run(actor), name=f"{self._name}-actor:{key}")
        self._actors[key] = actor
        self._actors_started += 1
        self._enqueue(actor, first)
        return True

    def _release_held(self) -> None:
        held, self._held = self._held, None
        for event in held or ():
            self.dispatch(event)

    def link(self, alias: str, key: str) -> None:
        """Route events keyed ``alias`` (an agent leg, a snoop, ``bridge:<id>``) to ``key``.

        Register the alias *before* the request that creates the object: its events may
        arrive before the HTTP response (ari.md §1.2.1). Removed when ``key``'s actor ends.
        """
        self._aliases[alias] = self._aliases.get(key, key)

    def unlink(self, alias: str) -> None:
        self._aliases.pop(alias, None)

    def has_actor(self, key: str) -> bool:
        return key in self._actors

    def actor_keys(self) -> list[str]:
        return list(self._actors)

    def stats(self) -> DispatcherStats:
        return DispatcherStats(
            live_actors=len(self._actors),
            actors_started=self._actors_started,
            actors_finished=self._actors_finished,
            events_routed=self._events_routed,
            events_dropped=self._events_dropped,
            max_queue_depth=self._max_queue_depth,
            handler_errors=self._handler_errors,
        )

    async def reset(self) -> None:
        """Cancel every call's actor and forget held events and aliases; the dispatcher stays
        usable (a controller that stepped down and may serve again later)."""
        tasks = [a.task for a in self._actors.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._actors.clear()
        self._aliases.clear()
        self._held = None

    async def close(self) -> None:
        """Cancel every actor (including control) and wait for them: no task is left behind."""
        self._closed = True
        actors = [*self._actors.values(), *([self._control] if self._control else [])]
        tasks = [a.task for a in actors if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._actors.clear()
        self._aliases.clear()
        self._control = None

    # --- internals ----------------------------------------------------------------------------

    def _to_control(self, event: Event) -> None:
        if self._control_handler is None:
            self._events_dropped += 1
            return
        if self._control is None:
            self._control = _Actor(_CONTROL, self._control_handler)
            self._control.task = asyncio.create_task(self._run(self._control), name=f"{self._name}-control")
        self._enqueue(self._control, event)

    def _spawn(self, key: str, first: Event) -> _Actor | None:
        try:
            handler = self._factory(key, first)
        except Exception:
            self._handler_errors += 1
            log.exception("%s: actor factory failed for call %s", self._name, key)
            return None
        if handler is None:
            return None
        actor = _Actor(key, handler)
        actor.task = asyncio.create_task(self._run(actor), name=f"{self._name}-actor:{key}")
        self._actors[key] = actor
        self._actors_started += 1
        return actor

    def _enqueue(self, actor: _Actor, event: object) -> None:
        actor.queue.put_nowait(event)
        self._events_routed += 1
        depth = actor.queue.qsize()
        if depth > self._max_queue_depth:
            self._max_queue_depth = depth

    async def _run(self, actor: _Actor) -> None:
        try:
            while True:
                event = await actor.queue.get()
                try:
                    outcome = await actor.handler(event)
                except Exception:
                    self._handler_errors += 1
                    log.exception(
                        "%s: handler failed for call %s on %s",
                        self._name,
                        actor.key,
                        type(event).__name__,
                    )
                    continue
                finally:
                    if actor is self._control and isinstance(event, Connected):
                        self._release_held()
                if outcome is Outcome.FINISHED and actor is not self._control:
                    return
        finally:
            self._retire(actor)

    def _retire(self, actor: _Actor) -> None:
        if self._actors.get(actor.key) is actor:
            del self._actors[actor.key]
            self._actors_finished += 1
            for alias in [a for a, k in self._aliases.items() if k == actor.key]:
                del self._aliases[alias]
        leftover = actor.queue.qsize()
        if leftover:
            self._events_dropped += leftover
            log.debug("%s: call %s ended with %d events unhandled", self._name, actor.key, leftover)
