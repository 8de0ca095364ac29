"""The IVR call state machine: typed events in, commands out, no I/O.

Theory of operation
-------------------
One ``Session`` per call. The adapter (``unico.calls``) feeds it events (a DTMF digit, a playback
that finished, a timer that fired, an action's result, a recording's end, the caller hanging up) and
carries out the commands it returns (play, stop a playback, start or cancel a timer, run an action,
record, hang up). The session never awaits anything and never reads the wall clock except through
the injected ``clock``, so every menu path, timeout and retry is testable without a network.

Within a node the session is in one phase:

``PROMPT``     a prompt is playing; for menus and digit collection a key press stops it (barge-in)
``WAIT``       waiting for input with a timer running (menu choice, next digit)
``ACTION``     a self-service handler is running; keys are ignored
``RECORDING``  the caller's message is being recorded
``QUEUED``     the ACD has the caller (music on hold, operators rung); keys are ignored
``ENDING``     the goodbye prompt plays, then we hang up
``DONE``       the call is over; every event is ignored

Events that belong to an earlier step (a stopped playback's ``PlaybackFinished``, a cancelled timer
that fired anyway) carry ids that no longer match and are ignored: ARI delivers such late events
routinely (reference/ari.md §1.2).

Every node visit and every input is appended to ``path``; that list is what the contact record
shows as the exact IVR path. Values collected from ``sensitive`` nodes are masked there.

Example::

    session = Session(config, call_id="c1", dialled="803160", caller="0612345678", clock=clock)
    commands = session.start()              # [Play(...)]
    commands = session.handle(Dtmf("1"))    # [StopPlayback(...), Play(...)]
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.config import IvrConfig
from ivr.schema import (
    ActionNode,
    CollectNode,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    RecordNode,
    SayNode,
    SetNode,
    variable_of,
)

# --- events (adapter -> session) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    playback_id: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class TimerExpired:
    timer_id: str


@dataclass(frozen=True, slots=True)
class ActionDone:
    request_id: str
    result: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionFailed:
    request_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    name: str
    duration: float | None


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The caller is gone (or the channel left our control)."""


@dataclass(frozen=True, slots=True)
class QueueResult:
    """What the ACD did with an ``Enqueue``: ``answered`` (an operator took the call), then
    ``completed`` when the operator hung up first (the caller goes on to the node's ``after_call``);
    or why it could not serve: ``closed``, ``full``, ``unavailable`` (nobody logged in can serve
    it), ``timeout`` (the queue's maximum wait), ``error``."""

    request_id: str
    result: str


Event = (
    Dtmf
    | PlaybackFinished
    | TimerExpired
    | ActionDone
    | ActionFailed
    | RecordingFinished
    | RecordingFailed
    | HungUp
    | QueueResult
)

# --- commands (session -> adapter) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    playback_id: str
    media: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class RunAction:
    request_id: str
    handler: str
    args: Mapping[str, str]
    timeout: float


@dataclass(frozen=True, slots=True)
class StartRecording:
    name: str
    max_duration: int
    max_silence: int
    beep: bool
    terminate_on: str


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Hand the caller to the ACD's ``queue``; a ``QueueResult`` with the same id comes back."""

    request_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str


Command = Play | StopPlayback | StartTimer | CancelTimer | RunAction | StartRecording | Enqueue | Hangup


class Phase(enum.Enum):
    PROMPT = "prompt"
    WAIT = "wait"
    ACTION = "action"
    RECORDING = "recording"
    QUEUED = "queued"
    ENDING = "ending"
    DONE = "done"


MASK = "****"


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the IVR path: a node visit (``kind`` = node type) or an input (``kind`` = input)."""

    node: str
    kind: str
    at: datetime
    digits: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "digits": self.digits,
            "note": self.note,
            "at": self.at.isoformat(),
        }


class Session:
    """The IVR state of one call. Not thread-safe; one adapter task drives it."""

    def __init__(
        self,
        config: IvrConfig,
        *,
        call_id: str,
        dialled: str,
        caller: str | None,
        clock: Callable[[], datetime],
        prompt_base: str = "/unico/default/sounds",
        language: str | None = None,
    ) -> None:
        self.config = config
        self.call_id = call_id
        self.dialled = dialled
        self.caller = caller
        self.clock = clock
        self.prompt_base = prompt_base.rstrip("/")
        number = config.numbers.get(dialled)
        self.language = language or (number.language if number else None) or config.settings.default_language
        self.vars: dict[str, str] = {}
        self.path: list[Step] = []
        self.outcome: str | None = None
        self.recording: str | None = None
        self.phase = Phase.PROMPT
        self.node_name = ""
        self.hangup_reason: str | None = None
        self._sensitive: set[str] = set()
        self._playback: str | None = None
        self._timer: str | None = None
        self._request: str | None = None
        self._recording_name: str | None = None
        self._attempts = 0
        self._buffer = ""
        self._visits = 0
        self._seq = 0

    # --- public -------------------------------------------------------------------------------

    @property
    def node(self) -> Node:
        return self.config.nodes[self.node_name]

    @property
    def finished(self) -> bool:
        return self.phase is Phase.DONE

    def start(self, *, overloaded: bool = False) -> list[Command]:
        """The call arrives. ``overloaded``: the controller is over ``settings.max_calls``, so the
        caller hears the ``overload`` node (or is hung up) instead of their number's menu."""
        if overloaded:
            self.outcome = "overload"
            if self.config.settings.overload:
                return self._enter(self.config.settings.overload)
            return self._hangup("overload")
        number = self.config.numbers.get(self.dialled)
        if number is not None:
            return self._enter(number.entry)
        self.outcome = "unknown_number"
        if self.config.settings.unknown_number:
            return self._enter(self.config.settings.unknown_number)
        return self._hangup("unknown_number")

    def handle(self, event: Event) -> list[Command]:
        if self.phase is Phase.DONE:
            return []
        if isinstance(event, HungUp):
            return self._caller_hung_up()
        if isinstance(event, Dtmf):
            return self._on_digit(event.digit)
        if isinstance(event, PlaybackFinished):
            if event.playback_id != self._playback:
                return []
            self._playback = None
            return self._prompt_done()
        if isinstance(event, TimerExpired):
            if event.timer_id != self._timer:
                return []
            self._timer = None
            return self._on_timeout()
        if isinstance(event, ActionDone | ActionFailed):
            if event.request_id != self._request or self.phase is not Phase.ACTION:
                return []
            self._request = None
            return self._on_action(event)
        if isinstance(event, RecordingFinished | RecordingFailed):
            if event.name != self._recording_name or self.phase is not Phase.RECORDING:
                return []
            return self._on_recording(event)
        if isinstance(event, QueueResult):
            if event.request_id != self._request or self.phase is not Phase.QUEUED:
                return []
            self._request = None
            return self._on_queue_result(event.request_id, event.result)
        raise TypeError(f"unknown event {event!r}")

    def masked(self, name: str) -> bool:
        return name in self._sensitive

    def media(self, items: Iterable[str]) -> tuple[str, ...]:
        """ARI media URIs for prompt names and ``number:``/``digits:`` items, in the call's language
        (the ACD's position and waiting-time announcements use it)."""
        return self._resolve(items)

    def path_dicts(self) -> list[dict[str, Any]]:
        return [step.to_dict() for step in self.path]

    def snapshot(self) -> dict[str, Any]:
        """What a restarted controller needs to go on with this call where it was (JSON-ready).

        Only a session handed to the ACD (``QUEUED``) can be restored: in every other phase a
        prompt, a timer or an action is in flight in this process and cannot be taken over.

        Example::

            saved = session.snapshot()
            again = Session.restore(config, saved, clock=clock)
        """
        return {
            "call_id": self.call_id,
            "dialled": self.dialled,
            "caller": self.caller,
            "language": self.language,
            "vars": dict(self.vars),
            "sensitive": sorted(self._sensitive),
            "path": self.path_dicts(),
            "outcome": self.outcome,
            "recording": self.recording,
            "phase": self.phase.value,
            "node": self.node_name,
            "request": self._request,
            "seq": self._seq,
            "visits": self._visits,
        }

    @classmethod
    def restore(
        cls,
        config: IvrConfig,
        data: Mapping[str, Any],
        *,
        clock: Callable[[], datetime],
        prompt_base: str = "/unico/default/sounds",
    ) -> Session:
        """A session from ``snapshot()``, waiting for the ACD's ``QueueResult`` of its request.

        Raises ``ValueError`` when the snapshot cannot go on under ``config``: not queued, or its
        queue node is gone (a reload removed it).
        """
        if data.get("phase") != Phase.QUEUED.value or not data.get("request"):
            raise ValueError(f"only a queued session can be restored, not {data.get('phase')!r}")
        node = config.nodes.get(str(data.get("node")))
        if not isinstance(node, QueueNode):
            raise ValueError(f"node {data.get('node')!r} is not a queue node in config {config.version}")
        session = cls(
            config,
            call_id=str(data["call_id"]),
            dialled=str(data["dialled"]),
            caller=data.get("caller"),
            clock=clock,
            prompt_base=prompt_base,
            language=str(data["language"]),
        )
        session.vars = {str(k): str(v) for k, v in dict(data.get("vars") or {}).items()}
        session._sensitive = {str(v) for v in data.get("sensitive") or ()}
        session.path = [
            Step(
                str(step["node"]),
                str(step["kind"]),
                datetime.fromisoformat(str(step["at"])),
                step.get("digits"),
                step.get("note"),
            )
            for step in data.get("path") or ()
        ]
        session.outcome = data.get("outcome")
        session.recording = data.get("recording")
        session.phase = Phase.QUEUED
        session.node_name = str(data["node"])
        session._request = str(data["request"])
        session._seq = int(data.get("seq") or 0)
        session._visits = int(data.get("visits") or 0)
        return session

    def public_vars(self) -> dict[str, str]:
        """Collected values with sensitive ones masked, for records and logs."""
        return {k: (MASK if k in self._sensitive else v) for k, v in self.vars.items()}

    # --- helpers ------------------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.call_id}-{kind}{self._seq}"

    def _step(self, kind: str, digits: str | None = None, note: str | None = None) -> None:
        # before the first node (a caller gone before the IVR started) the step is the call's own
        self.path.append(Step(self.node_name or "(start)", kind, self.clock(), digits, note))

    def _resolve(self, items: Iterable[str]) -> tuple[str, ...]:
        media: list[str] = []
        for item in items:
            if item.startswith("sound:"):
                media.append(item)
            elif item.startswith(("digits:", "number:")):
                kind, _, value = item.partition(":")
                var = variable_of(item)
                if var is not None:
                    value = self.vars.get(var, "")
                if value.isdigit():
                    media.append(f"{kind}:{value}")
            else:
                media.append(f"sound:{self.prompt_base}/{self.config.prompt_stem(item, self.language)}")
        return tuple(media)

    def _play(self, items: Iterable[str]) -> list[Command]:
        media = self._resolve(items)
        if not media:
            return self._prompt_done()
        self._playback = self._id("pb")
        return [Play(self._playback, media, self.language)]

    def _stop_prompt(self) -> list[Command]:
        if self._playback is None:
            return []
        playback, self._playback = self._playback, None
        return [StopPlayback(playback)]

    def _cancel_timer(self) -> list[Command]:
        if self._timer is None:
            return []
        timer, self._timer = self._timer, None
        return [CancelTimer(timer)]

    def _wait(self, seconds: float) -> list[Command]:
        self.phase = Phase.WAIT
        self._timer = self._id("t")
        return [StartTimer(self._timer, seconds)]

    def _hangup(self, reason: str) -> list[Command]:
        self.phase = Phase.DONE
        self.hangup_reason = reason
        return [*self._stop_prompt(), *self._cancel_timer(), Hangup(reason)]

    # --- node entry ---------------------------------------------------------------------------

    def _enter(self, name: str) -> list[Command]:
        self._visits += 1
        if self._visits > self.config.settings.max_node_visits:
            self.outcome = "error"
            self._step("loop", note=f"more than {self.config.settings.max_node_visits} node visits")
            return self._hangup("loop")
        self.node_name = name
        node = self.node
        self._attempts = 0
        self._buffer = ""
        self._step(node.type)
        if node.outcome:
            self.outcome = node.outcome
        if isinstance(node, PlayNode | MenuNode | CollectNode | RecordNode):
            self.phase = Phase.PROMPT
            return self._play(node.prompt)
        if isinstance(node, SayNode):
            self.phase = Phase.PROMPT
            return self._play([*node.before, f"{node.say_as}:{node.value}", *node.after])
        if isinstance(node, ActionNode):
            self.phase = Phase.ACTION
            self._request = self._id("act")
            args = {k: self.vars.get(v[1:], "") if v.startswith("$") else v for k, v in node.args.items()}
            return [RunAction(self._request, node.handler, args, node.timeout)]
        if isinstance(node, HoursNode):
            is_open = self.config.calendars[node.calendar].is_open(self.clock())
            self.path[-1] = Step(name, node.type, self.path[-1].at, note="open" if is_open else "closed")
            return self._enter(node.open if is_open else node.closed)
        if isinstance(node, SetNode):
            self.vars.update(node.vars)
            return self._enter(node.next)
        if isinstance(node, LanguageNode):
            self.language = node.language
            return self._enter(node.next)
        if isinstance(node, QueueNode):
            self.phase = Phase.PROMPT
            return self._play(node.prompt)
        if isinstance(node, HangupNode):
            self.outcome = self.outcome or "contained"
            self.phase = Phase.ENDING
            return self._play(node.prompt)
        raise TypeError(f"unknown node type {node!r}")

    # --- event handling -----------------------------------------------------------------------

    def _prompt_done(self) -> list[Command]:
        node = self.node
        if self.phase is Phase.ENDING:
            return self._hangup("ivr_end")
        if isinstance(node, PlayNode | SayNode):
            return self._enter(node.next)
        if isinstance(node, QueueNode):
            self.phase = Phase.QUEUED
            self._request = self._id("q")
            return [Enqueue(self._request, node.queue)]
        if isinstance(node, MenuNode):
            return self._wait(node.timeout)
        if isinstance(node, CollectNode):
            return self._wait(node.inter_digit_timeout if self._buffer else node.timeout)
        if isinstance(node, RecordNode):
            self.phase = Phase.RECORDING
            self._recording_name = self._id("rec")
            terminate = "none" if node.terminate_on == "none" else node.terminate_on
            return [StartRecording(self._recording_name, node.max_duration, node.max_silence, node.beep, terminate)]
        return []

    def _on_digit(self, digit: str) -> list[Command]:
        node = self.node
        if self.phase not in (Phase.PROMPT, Phase.WAIT):
            return []
        if isinstance(node, PlayNode):
            if node.barge_in and self.phase is Phase.PROMPT:
                self._step("input", digit, "skip")
                return [*self._stop_prompt(), *self._enter(node.next)]
            return []
        if isinstance(node, MenuNode):
            commands = [*self._stop_prompt(), *self._cancel_timer()]
            target = node.choices.get(digit)
            if target is not None:
                self._step("input", digit, "choice")
                return [*commands, *self._enter(target)]
            self._step("input", digit, "invalid")
            return [*commands, *self._retry(node, node.invalid, "invalid")]
        if isinstance(node, CollectNode):
            commands = [*self._stop_prompt(), *self._cancel_timer()]
            if digit == node.terminator:
                return [*commands, *self._finish_collect(node)]
            self._buffer += digit
            if len(self._buffer) >= node.max_length:
                return [*commands, *self._finish_collect(node)]
            return [*commands, *self._wait(node.inter_digit_timeout)]
        return []

    def _on_timeout(self) -> list[Command]:
        node = self.node
        if isinstance(node, MenuNode):
            self._step("input", None, "timeout")
            return self._retry(node, node.no_input, "no_input")
        if isinstance(node, CollectNode):
            if self._buffer:
                return self._finish_collect(node)
            self._step("input", None, "timeout")
            return self._retry(node, node.no_input, "no_input")
        return []

    def _retry(self, node: MenuNode | CollectNode, notice: list[str], why: str) -> list[Command]:
        self._attempts += 1
        self._buffer = ""
        if self._attempts > node.retries:
            self._step("fallback", note=why)
            return self._enter(node.fallback)
        self.phase = Phase.PROMPT
        return self._play([*notice, *node.prompt])

    def _finish_collect(self, node: CollectNode) -> list[Command]:
        value, self._buffer = self._buffer, ""
        valid = node.min_length <= len(value) <= node.max_length and (
            node.pattern is None or re.fullmatch(node.pattern, value) is not None
        )
        shown = MASK if node.sensitive and value else value
        self._step("input", shown, "valid" if valid else "invalid")
        if not valid:
            return self._retry(node, node.invalid, "invalid")
        self.vars[node.var] = value
        if node.sensitive:
            self._sensitive.add(node.var)
        return self._enter(node.next)

    def _on_action(self, event: ActionDone | ActionFailed) -> list[Command]:
        node = self.node
        assert isinstance(node, ActionNode)
        if isinstance(event, ActionFailed):
            self._step("result", note=f"error: {event.reason}")
            return self._enter(node.on_error)
        self.vars.update(event.values)
        self._step("result", note=event.result)
        target = node.results.get(event.result) or node.results.get("default") or node.on_error
        return self._enter(target)

    def _on_recording(self, event: RecordingFinished | RecordingFailed) -> list[Command]:
        node = self.node
        assert isinstance(node, RecordNode)
        name, self._recording_name = self._recording_name, None
        if isinstance(event, RecordingFailed):
            self._step("recording", note=f"failed: {event.reason}")
            return self._enter(node.too_short or node.next)
        duration = event.duration or 0.0
        if duration < node.min_duration and node.too_short is not None:
            self._step("recording", note=f"too short: {duration:.1f}s")
            return self._enter(node.too_short)
        assert name is not None
        self.vars[node.var] = name
        self.recording = name
        self._step("recording", note=f"{duration:.1f}s")
        return self._enter(node.next)

    def _on_queue_result(self, request_id: str, result: str) -> list[Command]:
        node = self.node
        assert isinstance(node, QueueNode)
        self._step("queue", note=result)
        if result == "answered":
            # The operator has the caller now; the IVR waits for the end of the conversation.
            self.outcome = "answered"
            self._request = request_id
            return []
        if result == "completed":
            # The operator hung up first: the caller goes on to the node's ``after_call`` (a survey).
            if node.after_call is not None:
                return self._enter(node.after_call)
            return self._hangup("operator_ended")
        self.outcome = node.outcome or "operators_unavailable"
        return self._enter(node.unavailable)

    def _caller_hung_up(self) -> list[Command]:
        if self.phase is Phase.RECORDING and self._recording_name is not None:
            # Asterisk keeps what was recorded when the caller hangs up mid-message; many callers
            # end a complaint by hanging up instead of pressing '#', so the message counts.
            node = self.node
            assert isinstance(node, RecordNode)
            self.vars[node.var] = self._recording_name
            self.recording = self._recording_name
            self._step("recording", note="caller hung up while recording")
        self._step("end", note="caller hung up")
        if self.phase is Phase.QUEUED and self.outcome != "answered":
            self.outcome = "abandoned_queue"
        self.outcome = self.outcome or "abandoned_ivr"
        self.phase = Phase.DONE
        self.hangup_reason = "caller"
        self._playback = None
        return self._cancel_timer()
