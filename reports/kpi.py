"""Contact-centre KPIs per interval and per queue, tier, operator or in total; pure, no I/O.

Theory of operation. :func:`compute` takes plain rows (contacts, operator state spans, surveys,
complaints), puts each into one bucket (:mod:`reports.buckets`) and one key of the chosen
dimension, adds up counts and sums there, and only at the end turns them into ratios and means.
Every bucket of the period gets a row for every key seen anywhere in it, so a quiet hour reads as
zero calls rather than a missing line; a ratio whose denominator is zero is ``None`` (never a
division by zero). The definitions, with their sources, are in ``docs/reports.md``; in short:

* queue KPIs (offered ... EWT accuracy) count in the bucket where the call **entered the queue**
  (``queued_at``), whenever it was answered or ended;
* contact KPIs (contacts, IVR containment, first-contact resolution) in the bucket where the call
  **started**; surveys with their contact (queue entry, else start); complaints where received;
* occupancy from operator state spans **clipped** to each bucket's edges.

By operator, a call counts for the operator recorded on it (the one who answered it, or the last
one after a transfer); calls nobody answered are under the key ``None``. Occupancy exists only by
operator and in total: an operator's time is not split by queue.

The input rows, options and :class:`Report` are in :mod:`reports.model` (re-exported here).

Example::

    report = compute(rows, start=monday, end=next_monday, interval="60m", by="queue",
                     as_of=now, options=KpiOptions.from_queues(config.queues))
    for row in report.rows:
        print(row.start, row.key, row.kpis["service_level"])
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import attrgetter
from types import MappingProxyType
from typing import cast

from reports.buckets import QUARTER, Buckets, Interval, parse_interval
from reports.model import (
    ANSWERED_COMPLAINTS,
    AVAILABLE_STATES,
    BUSY_STATES,
    DIMENSIONS,
    KPI_COLUMNS,
    MAX_CALL,
    RATIO_COLUMNS,
    RESOLVING_OUTCOMES,
    SECONDS_COLUMNS,
    SL_DEFINITIONS,
    TOTAL_KEY,
    AgentSpan,
    ComplaintRow,
    ContactRow,
    Dimension,
    KpiOptions,
    KpiValue,
    QueueRules,
    Report,
    ReportRow,
    SlDefinition,
    SurveyRow,
    path_flags,
)


@dataclass(slots=True)
class _Sums:
    """Counts and sums of one bucket and key (mutable, private); :func:`_kpis` makes KPIs of them."""

    contacts: int = 0
    contained: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    wait: float = 0.0
    handled: int = 0
    talk: float = 0.0
    wrapup: float = 0.0
    wrapup_estimated: int = 0
    transferred: int = 0
    escalated: int = 0
    busy: float = 0.0
    ready: float = 0.0
    fcr_resolved: int = 0
    fcr_repeated: int = 0
    fcr_pending: int = 0
    surveys: int = 0
    scored: int = 0
    score_sum: int = 0
    solved_answers: int = 0
    solved: int = 0
    complaints_opened: int = 0
    complaints_overdue: int = 0
    ewt_calls: int = 0
    ewt_abs: float = 0.0
    ewt_signed: float = 0.0


def _kpis(s: _Sums, definition: SlDefinition, *, agents: bool) -> dict[str, KpiValue]:
    # ratios written out (x / y if y else None) rather than through a helper: this runs once per
    # row of the report, tens of thousands of times for a month of 15-minute buckets by queue
    answered, handled, offered, abandoned = s.answered, s.handled, s.offered, s.abandoned
    offered_long = offered - s.short_abandoned  # offered, short abandons left out
    if definition == "answered":
        service_level = s.answered_in_sl / answered if answered else None
    elif definition == "offered":
        service_level = s.answered_in_sl / offered_long if offered_long else None
    else:
        both = answered + abandoned
        service_level = (s.answered_in_sl + s.abandoned_in_sl) / both if both else None
    avg_talk = s.talk / handled if handled else None
    avg_wrapup = s.wrapup / handled if handled else None
    staffed = s.busy + s.ready
    decided = s.fcr_resolved + s.fcr_repeated
    ewt = s.ewt_calls
    return {
        "contacts": s.contacts,
        "contained": s.contained,
        "ivr_containment": s.contained / s.contacts if s.contacts else None,
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": s.short_abandoned,
        "unanswered_other": offered_long - answered - abandoned,
        "abandon_rate": abandoned / offered_long if offered_long else None,
        "answered_in_sl": s.answered_in_sl,
        "abandoned_in_sl": s.abandoned_in_sl,
        "service_level": service_level,
        "asa": s.wait / answered if answered else None,
        "handled": handled,
        "avg_talk": avg_talk,
        "avg_wrapup": avg_wrapup,
        # hold is zero: Unico has no hold yet, so AHT = talk + wrap-up
        "aht": avg_talk + avg_wrapup if avg_talk is not None and avg_wrapup is not None else None,
        "wrapup_estimated": s.wrapup_estimated,
        "transferred": s.transferred,
        "transfer_rate": s.transferred / answered if answered else None,
        "escalated": s.escalated,
        "escalation_rate": s.escalated / offered if offered else None,
        "busy_seconds": float(s.busy) if agents else None,
        "ready_seconds": float(s.ready) if agents else None,
        "occupancy": s.busy / staffed if agents and staffed else None,
        "fcr_resolved": s.fcr_resolved,
        "fcr_repeated": s.fcr_repeated,
        "fcr_pending": s.fcr_pending,
        "fcr": s.fcr_resolved / decided if decided else None,
        "surveys": s.surveys,
        "survey_score": s.score_sum / s.scored if s.scored else None,
        "survey_solved": s.solved / s.solved_answers if s.solved_answers else None,
        "complaints_opened": s.complaints_opened,
        "complaints_overdue": s.complaints_overdue,
        "ewt_calls": ewt,
        "ewt_mae": s.ewt_abs / ewt if ewt else None,
        "ewt_bias": s.ewt_signed / ewt if ewt else None,
    }


class _Repeats:
    """When each caller called: a known customer is followed across numbers (``customer_id``),
    anyone else by number (``caller``); a withheld number of an unknown caller cannot be followed.

    Most callers call once, so a caller's entry is a bare start time (a float) until a second
    contact turns it into a sorted list: a million one-element lists would cost more than the
    rest of the report, mostly in the garbage collector walking them.
    """

    def __init__(self, contacts: Sequence[ContactRow], starts: Sequence[float]) -> None:
        customers: dict[str, float | list[float]] = {}
        callers: dict[str, float | list[float]] = {}
        for c, started in zip(contacts, starts, strict=True):
            if c.customer_id:
                index, who = customers, c.customer_id
            elif c.caller:
                index, who = callers, c.caller
            else:
                continue
            seen = index.get(who)
            if seen is None:
                index[who] = started
            elif isinstance(seen, float):
                index[who] = [seen, started]
            else:
                seen.append(started)
        for index in (customers, callers):
            for times in index.values():
                if isinstance(times, list):
                    times.sort()
        self._customers, self._callers = customers, callers

    def after(self, c: ContactRow, started: float) -> float | None:
        """The start of the same caller's next contact after ``started``; ``None`` if none is known
        (or the caller cannot be followed: a withheld number of an unknown caller)."""
        if c.customer_id:
            times = self._customers.get(c.customer_id)
        elif c.caller:
            times = self._callers.get(c.caller)
        else:
            return None
        if times is None or isinstance(times, float):
            return None  # only this contact
        later = bisect.bisect_right(times, started)
        return times[later] if later < len(times) else None


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value!r}; pass a timezone-aware one")
    return value.astimezone(UTC)


def compute(
    contacts: Iterable[ContactRow],
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    by: Dimension,
    as_of: datetime,
    options: KpiOptions | None = None,
    spans: Iterable[AgentSpan] = (),
    surveys: Iterable[SurveyRow] = (),
    complaints: Iterable[ComplaintRow] = (),
) -> Report:
    """The KPIs of ``[start, end)`` per ``interval`` bucket and ``by`` key.

    ``contacts`` may (and for first-contact resolution should) include contacts outside the
    period: those started up to ``fcr_window`` after ``end`` are looked at only as repeat contacts,
    and those started before ``start`` only if they entered a queue inside it. ``as_of`` is when
    the data was read: open operator spans end there, a first-contact window not over by then is
    *pending*, and a complaint is overdue if its due day is before ``as_of``'s date.

    Example::

        report = compute(rows, start=datetime(2026, 11, 1, tzinfo=rome),
                         end=datetime(2026, 11, 2, tzinfo=rome), interval="60m", by="total",
                         as_of=datetime.now(UTC))
        report.rows[9].kpis["offered"]        # calls that entered a queue 09:00-10:00
    """
    options = options or KpiOptions()
    parse_interval(interval)
    if by not in DIMENSIONS:
        raise ValueError(f"by: unknown dimension {by!r}; use one of {', '.join(DIMENSIONS)}")
    start, end, as_of = _aware("start", start), _aware("end", end), _aware("as_of", as_of)
    if end <= start:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    zone = options.zone
    buckets = Buckets(interval, zone)
    rows = contacts if isinstance(contacts, Sequence) else list(contacts)
    surveys, complaints = tuple(surveys), tuple(complaints)
    lo, hi, now = start.timestamp(), end.timestamp(), as_of.timestamp()
    sums: dict[tuple[int, str | None], _Sums] = {}

    def at(bucket: int, key: str | None) -> _Sums:
        found = sums.get((bucket, key))
        if found is None:
            found = sums[(bucket, key)] = _Sums()
        return found

    # The hot loop below runs once per contact, a million times for a big month. Every instant of
    # a UTC quarter hour falls in the same bucket (reports.buckets), so the accumulator is looked
    # up by (quarter, key) in one probe; cell() fills that cache on a miss.
    cells: dict[tuple[int, str | None], _Sums] = {}
    start_of = buckets.start_of

    def cell(timestamp: float, key: str | None) -> _Sums:
        found = cells[(int(timestamp // QUARTER), key)] = at(start_of(timestamp), key)
        return found

    key_of = _key_function(by)
    rules: dict[str | None, QueueRules] = {name: queue for name, queue in options.queues.items()}
    default_rules = options.default_rules
    starts = [c.started_at.timestamp() for c in rows]
    repeats = _Repeats(rows, starts)
    window = options.fcr_window.total_seconds()
    for c, started in zip(rows, starts, strict=True):
        key = key_of(c)
        if lo <= started < hi:
            s = cells.get((int(started // QUARTER), key)) or cell(started, key)
            s.contacts += 1
            outcome = c.outcome
            if outcome == "contained":
                s.contained += 1
            if outcome in RESOLVING_OUTCOMES and (c.customer_id or c.caller):
                _first_contact(s, repeats.after(c, started), started, window, now)
        queued_at = c.queued_at
        if queued_at is not None:
            queued = queued_at.timestamp()
            if lo <= queued < hi:
                s = cells.get((int(queued // QUARTER), key)) or cell(queued, key)
                _queued_call(s, c, queued_at, rules.get(c.queue, default_rules))

    by_id = {c.id: c for c in rows} if surveys or complaints else {}
    for survey in surveys:
        contact = by_id.get(survey.contact_id)
        if contact is not None:
            anchor = (contact.queued_at or contact.started_at).timestamp()
            if lo <= anchor < hi:
                _survey(at(start_of(anchor), key_of(contact)), survey)
    today = as_of.astimezone(zone).date()
    for complaint in complaints:
        received = complaint.received_at.timestamp()
        if lo <= received < hi:
            contact = by_id.get(complaint.contact_id) if complaint.contact_id else None
            key = TOTAL_KEY if by == "total" else None if contact is None else key_of(contact)
            _complaint(at(start_of(received), key), complaint, today)
    agents = by in ("total", "operator")
    if agents:
        for span in spans:
            _span(at, span, buckets, TOTAL_KEY if by == "total" else span.agent, lo, min(hi, now))

    keys: set[str | None] = {key for _, key in sums}
    if by == "total":
        keys = {TOTAL_KEY}
    elif by == "queue":
        keys |= set(options.queues)
    elif by == "tier":
        keys |= {queue.tier for queue in options.queues.values() if queue.tier is not None}
    ordered = sorted(keys, key=lambda k: (k is None, k or ""))
    definition = options.sl_definition
    quiet = MappingProxyType(_kpis(_Sums(), definition, agents=agents))  # shared by every quiet row
    out: list[ReportRow] = []
    for bucket in buckets.between(start, end):
        bucket_start, bucket_end = buckets.local(bucket), buckets.local(buckets.next_start(bucket))
        for key in ordered:
            found = sums.get((bucket, key))
            kpis = quiet if found is None else MappingProxyType(_kpis(found, definition, agents=agents))
            out.append(ReportRow(start=bucket_start, end=bucket_end, key=key, kpis=kpis))
    return Report(
        start=start,
        end=end,
        interval=interval,
        by=by,
        as_of=as_of,
        sl_definition=options.sl_definition,
        fcr_window=options.fcr_window,
        timezone=options.timezone,
        rows=tuple(out),
    )


def _key_function(by: Dimension) -> Callable[[ContactRow], str | None]:
    if by == "total":
        return lambda c: TOTAL_KEY
    # attrgetter runs in C: this is called once per contact
    return cast("Callable[[ContactRow], str | None]", attrgetter(by))


def _first_contact(s: _Sums, repeat: float | None, started: float, window: float, now: float) -> None:
    """Classify one candidate: ``repeat`` is the start of the caller's next contact, if any."""
    if repeat is not None and repeat - started <= window:
        s.fcr_repeated += 1
    elif started + window > now:
        s.fcr_pending += 1  # no repeat yet, but the window is not over
    else:
        s.fcr_resolved += 1


def _queued_call(s: _Sums, c: ContactRow, queued: datetime, rules: QueueRules) -> None:
    s.offered += 1
    if c.escalated:
        s.escalated += 1
    answered = c.answered_at
    if answered is not None:
        wait = (answered - queued).total_seconds()
        if wait < 0:
            wait = 0.0
        s.answered += 1
        s.wait += wait
        if wait <= rules.sl_threshold:
            s.answered_in_sl += 1
        if c.transferred:
            s.transferred += 1
        talk_end = c.talk_ended_at or c.ended_at
        if talk_end is not None:
            s.handled += 1
            s.talk += max(0.0, (talk_end - answered).total_seconds())
            if c.wrapup_ended_at is not None:
                s.wrapup += max(0.0, (c.wrapup_ended_at - talk_end).total_seconds())
            else:
                # older rows: the queue's wrap-up time, the most the ACD allows, so an upper bound
                s.wrapup += rules.wrapup
                s.wrapup_estimated += 1
        if c.estimated_wait is not None:
            error = c.estimated_wait - wait
            s.ewt_calls += 1
            s.ewt_abs += abs(error)
            s.ewt_signed += error
    elif c.outcome == "abandoned_queue" and c.ended_at is not None:
        wait = max(0.0, (c.ended_at - queued).total_seconds())
        if wait < rules.short_abandon:
            s.short_abandoned += 1
        else:
            s.abandoned += 1
            if wait <= rules.sl_threshold:
                s.abandoned_in_sl += 1


def _survey(s: _Sums, survey: SurveyRow) -> None:
    s.surveys += 1
    if survey.score is not None:
        s.scored += 1
        s.score_sum += survey.score
    if survey.solved is not None:
        s.solved_answers += 1
        s.solved += survey.solved


def _complaint(s: _Sums, complaint: ComplaintRow, today: date) -> None:
    s.complaints_opened += 1
    answered = (
        complaint.status in ANSWERED_COMPLAINTS or complaint.resolved_at is not None or complaint.closed_at is not None
    )
    if not answered and complaint.due_on < today:
        s.complaints_overdue += 1


def _span(
    at: Callable[[int, str | None], _Sums], span: AgentSpan, buckets: Buckets, key: str, lo: float, hi: float
) -> None:
    """Add a state span to every bucket it overlaps, clipped to the bucket edges and ``[lo, hi)``."""
    busy = span.state in BUSY_STATES
    if not busy and span.state not in AVAILABLE_STATES:
        return
    begin = max(span.started_at.timestamp(), lo)
    finish = min(span.ended_at.timestamp(), hi) if span.ended_at is not None else hi
    bucket = buckets.start_of(begin)
    while begin < finish:
        following = buckets.next_start(bucket)
        part = min(finish, following) - begin
        if busy:
            at(bucket, key).busy += part
        else:
            at(bucket, key).ready += part
        begin = bucket = following


__all__ = [
    "ANSWERED_COMPLAINTS",
    "AVAILABLE_STATES",
    "BUSY_STATES",
    "DIMENSIONS",
    "KPI_COLUMNS",
    "MAX_CALL",
    "RATIO_COLUMNS",
    "SECONDS_COLUMNS",
    "SL_DEFINITIONS",
    "TOTAL_KEY",
    "AgentSpan",
    "ComplaintRow",
    "ContactRow",
    "Dimension",
    "Interval",
    "KpiOptions",
    "QueueRules",
    "Report",
    "ReportRow",
    "SlDefinition",
    "SurveyRow",
    "compute",
    "path_flags",
]
