"""Self-service actions: Python handlers that YAML ``action`` nodes call by name.

A handler is registered with the results it can return and the variables it sets, so
``unico check`` can verify a dialplan without running anything. Handlers get an ``ActionContext``
(the records store and the clock) and the node's ``args`` with ``$var`` already substituted.

Example::

    @registry.register("parcel_tracking", results={"delivered", "not_found"}, sets={"parcel_status"})
    async def parcel_tracking(ctx: ActionContext, args: Mapping[str, str]) -> ActionResult:
        ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ActionResult:
    result: str
    values: Mapping[str, str] = field(default_factory=dict)


class ParcelLookup(Protocol):
    async def parcel_status(self, code: str) -> object | None: ...


class CallServices(Protocol):
    """What the call-related actions need from the customer database (``unico.calls`` binds it)."""

    async def open_complaint(
        self, *, contact_id: str, caller: str | None, category: str, recording: str | None
    ) -> str: ...

    async def record_survey(self, *, contact_id: str, score: int | None, solved: bool | None) -> None: ...


@dataclass(frozen=True)
class ActionContext:
    store: ParcelLookup
    now: datetime
    #: the call's contact id and caller number, for actions that write about this call
    call_id: str = ""
    caller: str | None = None
    services: CallServices | None = None


Handler = Callable[[ActionContext, Mapping[str, str]], Awaitable[ActionResult]]


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    func: Handler
    args: frozenset[str]
    results: frozenset[str]
    sets: frozenset[str]


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self,
        name: str,
        *,
        args: set[str],
        results: set[str],
        sets: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> Callable[[Handler], Handler]:
        def decorate(func: Handler) -> Handler:
            if name in self._specs:
                raise ValueError(f"action handler {name!r} registered twice")
            self._specs[name] = HandlerSpec(name, func, frozenset(args), frozenset(results), frozenset(sets))
            return func

        return decorate

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)


registry = Registry()

#: parcel states as stored in ``parcels.status``; each is also a result an action node can branch on
PARCEL_STATES = {"accepted", "in_transit", "out_for_delivery", "held_at_office", "delivered", "returned"}


@registry.register(
    "parcel_tracking",
    args={"code"},
    results={*PARCEL_STATES, "not_found"},
    sets={"parcel_status"},
)
async def parcel_tracking(ctx: ActionContext, args: Mapping[str, str]) -> ActionResult:
    """Look a parcel up by its tracking code; the result is its state or ``not_found``."""
    found = await ctx.store.parcel_status(args["code"])
    status = getattr(found, "status", None) if found is not None else None
    if status is None:
        return ActionResult("not_found")
    state = str(status) if str(status) in PARCEL_STATES else "in_transit"
    return ActionResult(state, {"parcel_status": state})


#: complaint categories the IVR offers (keys of the complaint deadlines in the customer database)
COMPLAINT_CATEGORIES = {"postal", "payments", "banking", "mobile", "other"}


@registry.register(
    "open_complaint",
    args={"category", "recording"},
    results={"opened"},
    sets={"complaint_number"},
)
async def open_complaint(ctx: ActionContext, args: Mapping[str, str]) -> ActionResult:
    """Open a complaint for this call with its recorded message; sets the number to read back."""
    if ctx.services is None:
        raise LookupError("no complaint desk configured")
    category = args["category"] if args["category"] in COMPLAINT_CATEGORIES else "other"
    number = await ctx.services.open_complaint(
        contact_id=ctx.call_id, caller=ctx.caller, category=category, recording=args["recording"] or None
    )
    return ActionResult("opened", {"complaint_number": number})


@registry.register("record_survey", args={"score", "solved"}, results={"saved"})
async def record_survey(ctx: ActionContext, args: Mapping[str, str]) -> ActionResult:
    """Store the post-call survey: a 1-5 score and "was your problem solved?" (1 yes, 2 no)."""
    if ctx.services is None:
        raise LookupError("no survey store configured")
    score = int(args["score"]) if args["score"].isdigit() and 1 <= int(args["score"]) <= 5 else None
    solved = {"1": True, "2": False}.get(args["solved"])
    await ctx.services.record_survey(contact_id=ctx.call_id, score=score, solved=solved)
    return ActionResult("saved")
