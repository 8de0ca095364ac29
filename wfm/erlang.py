"""Erlang C and Erlang A: waiting, service level, and the agents one interval needs.

Theory of operation. An interval with ``calls`` offered over ``interval_s`` seconds and a mean handle
time ``aht`` seconds carries ``load = calls * aht / interval_s`` erlangs. Erlang C is the M/M/n queue
(nobody hangs up while waiting); Erlang A (Palm 1943; Garnett, Mandelbaum and Reiman 2002) is
M/M/n+M, where each waiting caller hangs up after an exponential patience of mean ``patience``.

* Service level is the share of *offered* calls answered within ``answer_within`` seconds; a caller
  who hangs up while waiting counts as not answered in time.
* ASA (average speed of answer) is the mean wait of answered calls, zero waits included.
* ``agents`` is what must be on the phones; shrinkage (breaks, training, absence) turns it into
  scheduled ``positions`` in :mod:`wfm.staffing`.

Numerics, so that a 1,000-erlang interval neither overflows nor loses its digits: no factorials
and no powers. Erlang B comes from the recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))``,
every term in (0, 1], and C from B as ``C = n B / (n - A (1 - B))``. Erlang A works on the
birth-death chain's log-probabilities (shifted by their maximum before exponentiating); the answered-within-t
probability comes from the tagged caller's chain by uniformization (a Poisson mixture of its jump
chain, every term non-negative), the answered probability and ASA from closed products along it.

Example (the pyworkforce README case: 100 calls in 30 min, AHT 180 s, 80% in 20 s)::

    load = offered_load(100, 180, 1800)                              # 10.0 erlangs
    need = erlang_c_agents(load, 180, service_level=0.8, answer_within=20)
    need.agents, round(need.service_level, 3)                        # (14, 0.888)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import gammaln
from scipy.stats import norm

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: targets are met when within this of the goal, so 0.8 is not missed by a rounding of 0.79999999
TOLERANCE = 1e-12
#: the Erlang A chain is cut where a state's probability falls this far (natural log) below the
#: largest one: e^-40 is 4e-18, far below anything a plan can see
LOG_CUT = 40.0
#: and never runs longer than this many waiting states (patience of years with overload)
MAX_WAITING_STATES = 200_000


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """What ``agents`` on the phones give for one interval's traffic."""

    agents: int
    load: float
    p_wait: float
    service_level: float
    asa: float
    occupancy: float
    p_abandon: float = 0.0


def offered_load(calls: float, aht: float, interval_s: float) -> float:
    """Erlangs offered: ``calls`` in ``interval_s`` seconds, each taking ``aht`` seconds."""
    if calls < 0 or aht < 0 or interval_s <= 0:
        raise ValueError(f"calls and aht must be >= 0 and the interval > 0, got {calls}, {aht}, {interval_s}")
    return calls * aht / interval_s


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/n/n by the stable recursion (no factorials).

    Example::

        erlang_b(3, 2.0)   # 4/19 = 0.2105...
    """
    _check(agents, load)
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability an arriving call waits in M/M/n (1.0 when ``agents <= load``: no steady state).

    Example::

        erlang_c(3, 2.0)   # 4/9 = 0.444...
    """
    _check(agents, load)
    if load == 0:
        return 0.0
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


def erlang_c_metrics(agents: int, load: float, aht: float, answer_within: float) -> QueueMetrics:
    """Service level, ASA, waiting probability and occupancy of M/M/n with ``agents`` agents."""
    _check(agents, load)
    if load == 0:
        return QueueMetrics(agents=agents, load=0.0, p_wait=0.0, service_level=1.0, asa=0.0, occupancy=0.0)
    if agents <= load:
        return QueueMetrics(
            agents=agents, load=load, p_wait=1.0, service_level=0.0, asa=math.inf, occupancy=1.0 if agents else 0.0
        )
    c = erlang_c(agents, load)
    return QueueMetrics(
        agents=agents,
        load=load,
        p_wait=c,
        service_level=max(0.0, 1.0 - c * math.exp(-(agents - load) * answer_within / aht)),
        asa=c * aht / (agents - load),
        occupancy=load / agents,
    )


def erlang_c_agents(
    load: float,
    aht: float,
    *,
    service_level: float | None = 0.8,
    answer_within: float = 20.0,
    asa: float | None = None,
    max_occupancy: float = 1.0,
) -> QueueMetrics:
    """The fewest agents meeting every target given, with what they achieve.

    Like pyworkforce and most WFM tools, the occupancy cap is applied after the service target:
    ``agents = max(n_service, ceil(load / max_occupancy))``.
    """
    found = erlang_c_staff(
        np.array([load]),
        np.array([aht]),
        service_level=service_level,
        answer_within=answer_within,
        asa=asa,
        max_occupancy=max_occupancy,
    )
    return erlang_c_metrics(int(found[0]), load, aht, answer_within)


def erlang_c_staff(
    loads: FloatArray,
    ahts: FloatArray,
    *,
    service_level: float | None = 0.8,
    answer_within: float = 20.0,
    asa: float | None = None,
    max_occupancy: float = 1.0,
) -> IntArray:
    """:func:`erlang_c_agents` for many intervals at once: the agents each one needs.

    One pass of the Erlang B recursion over ``n = 1, 2, ...`` serves every interval together, so a
    week of 15-minute intervals for 50 queues costs a few hundred numpy steps. Zero load needs zero.
    """
    _check_targets(service_level, answer_within, asa, max_occupancy)
    loads = np.asarray(loads, dtype=np.float64)
    ahts = np.broadcast_to(np.asarray(ahts, dtype=np.float64), loads.shape)
    if np.any(loads < 0) or np.any(~np.isfinite(loads)):
        raise ValueError("loads must be finite and >= 0")
    if np.any((ahts <= 0) & (loads > 0)):
        raise ValueError("aht must be > 0 wherever there is traffic")
    result = np.zeros(loads.shape, dtype=np.int64)
    done = loads <= 0
    floor_occupancy = np.ceil(loads / max_occupancy - 1e-9)
    b = np.ones(loads.shape)
    n = 0
    limit = int(loads.max(initial=0.0) / max_occupancy) + 10_000
    while not done.all():
        n += 1
        if n > limit:  # pragma: no cover - every target is met once n - load is large enough
            raise ArithmeticError("Erlang C staffing did not converge")
        b = loads * b / (n + loads * b)
        stable = n > loads
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(stable, n * b / (n - loads * (1 - b)), 1.0)
            gap = np.where(stable, n - loads, 0.0)
            ok = stable & (n >= floor_occupancy)
            safe_aht = np.where(ahts > 0, ahts, 1.0)
            if service_level is not None:
                achieved = 1.0 - c * np.exp(-gap * answer_within / safe_aht)
                ok &= achieved >= service_level - TOLERANCE
            if asa is not None:
                ok &= np.where(stable, c * safe_aht / np.where(stable, gap, 1.0), np.inf) <= asa + TOLERANCE
        new = ok & ~done
        result[new] = n
        done |= new
    return result


def erlang_c_arrays(
    agents: IntArray, loads: FloatArray, ahts: FloatArray, answer_within: float
) -> dict[str, FloatArray]:
    """:func:`erlang_c_metrics` for many intervals at once: ``p_wait``, ``service_level``, ``asa``
    and ``occupancy`` arrays (zero load: no wait, full service level, zero occupancy)."""
    agents = np.asarray(agents, dtype=np.int64)
    loads = np.asarray(loads, dtype=np.float64)
    ahts = np.broadcast_to(np.asarray(ahts, dtype=np.float64), loads.shape)
    b_at = np.ones(loads.shape)
    b = np.ones(loads.shape)
    for n in range(1, int(agents.max(initial=0)) + 1):
        b = loads * b / (n + loads * b)
        b_at = np.where(agents == n, b, b_at)
    busy = loads > 0
    stable = agents > loads
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(stable, agents - loads, 1.0)
        c = np.where(stable, agents * b_at / (agents - loads * (1 - b_at)), 1.0)
        c = np.where(busy, c, 0.0)
        safe_aht = np.where(ahts > 0, ahts, 1.0)
        service = np.where(stable, np.maximum(0.0, 1.0 - c * np.exp(-gap * answer_within / safe_aht)), 0.0)
        asa = np.where(stable, c * safe_aht / gap, np.inf)
        occupancy = np.where(agents > 0, np.minimum(1.0, loads / np.maximum(agents, 1)), 0.0)
    return {
        "p_wait": c,
        "service_level": np.where(busy, service, 1.0),
        "asa": np.where(busy, asa, 0.0),
        "occupancy": np.where(busy, occupancy, 0.0),
    }


def erlang_a_metrics(agents: int, load: float, aht: float, patience: float, answer_within: float) -> QueueMetrics:
    """Erlang A (M/M/n+M): what ``agents`` achieve when waiting callers hang up after ``patience`` s
    on average. As ``patience`` grows the figures tend to Erlang C's (for ``agents > load``).

    Example::

        erlang_a_metrics(12, 10.0, 180, patience=120, answer_within=20).p_abandon   # 0.062
    """
    _check(agents, load)
    if aht <= 0 or patience <= 0 or answer_within < 0:
        raise ValueError("aht and patience must be > 0 and answer_within >= 0")
    if load == 0:
        return QueueMetrics(agents=agents, load=0.0, p_wait=0.0, service_level=1.0, asa=0.0, occupancy=0.0)
    if agents == 0:
        return QueueMetrics(
            agents=0, load=load, p_wait=1.0, service_level=0.0, asa=math.inf, occupancy=0.0, p_abandon=1.0
        )
    mu, theta = 1.0 / aht, 1.0 / patience
    lam = load * mu
    log_pi = _erlang_a_log_pi(agents, lam, mu, theta)
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    waiting = pi[agents:]  # waiting[j]: an arrival finds all agents busy and j callers ahead
    j = np.arange(waiting.size, dtype=np.float64)
    p_wait = float(waiting.sum())
    p_abandon = min(1.0, theta * float(np.dot(j, waiting)) / lam)  # Little: abandons = θ E[queue]
    # A tagged caller with i ahead moves up at rate r_i = nμ + iθ (a service ends or one ahead
    # hangs up) and hangs up itself at rate θ. Each step is won with r_i / (r_i + θ), and its
    # duration is Exp(r_i + θ) whichever way it ends, so answered-probability and answered-wait
    # are products and sums along the chain.
    leave = agents * mu + j * theta + theta
    log_step = np.log1p(-theta / leave)
    answered_if_waiting = np.exp(np.cumsum(log_step))
    mean_wait_answered = answered_if_waiting * np.cumsum(1.0 / leave)
    immediately = float(pi[:agents].sum())
    p_answered = immediately + float(np.dot(waiting, answered_if_waiting))
    within = _answered_within(waiting, agents * mu, theta, answer_within)
    asa = float(np.dot(waiting, mean_wait_answered)) / p_answered if p_answered > 0 else math.inf
    return QueueMetrics(
        agents=agents,
        load=load,
        p_wait=p_wait,
        service_level=min(1.0, immediately + within),
        asa=asa,
        occupancy=min(1.0, load * p_answered / agents),
        p_abandon=p_abandon,
    )


def erlang_a_agents(
    load: float,
    aht: float,
    patience: float,
    *,
    service_level: float | None = 0.8,
    answer_within: float = 20.0,
    asa: float | None = None,
    max_occupancy: float = 1.0,
    max_abandon: float | None = None,
    start: int | None = None,
) -> QueueMetrics:
    """The fewest agents meeting every target under Erlang A, with what they achieve.

    The search starts from ``start`` (default: the Erlang C answer, usually within a few agents)
    and walks down while the targets still hold, or up until they do.
    """
    _check_targets(service_level, answer_within, asa, max_occupancy)
    if load == 0:
        return erlang_a_metrics(0, 0.0, aht, patience, answer_within)

    def meets(metrics: QueueMetrics) -> bool:
        return (
            (service_level is None or metrics.service_level >= service_level - TOLERANCE)
            and (asa is None or metrics.asa <= asa + TOLERANCE)
            and metrics.occupancy <= max_occupancy + TOLERANCE
            and (max_abandon is None or metrics.p_abandon <= max_abandon + TOLERANCE)
        )

    if start is None:
        start = int(
            erlang_c_staff(
                np.array([load]), np.array([aht]), service_level=service_level, answer_within=answer_within, asa=asa
            )[0]
        )
    n = max(1, start)
    current = erlang_a_metrics(n, load, aht, patience, answer_within)
    if meets(current):
        while n > 1:
            lower = erlang_a_metrics(n - 1, load, aht, patience, answer_within)
            if not meets(lower):
                break
            n, current = n - 1, lower
        return current
    while not meets(current):
        n += 1
        current = erlang_a_metrics(n, load, aht, patience, answer_within)
    return current


def sqrt_staffing(
    load: float, aht: float, *, service_level: float | None = 0.8, answer_within: float = 20.0, asa: float | None = None
) -> int:
    """Square-root safety staffing ``n = ceil(A + β √A)``, β from the Halfin-Whitt limit.

    In the Halfin-Whitt regime the waiting probability is ``[1 + β Φ(β) / φ(β)]^-1`` and
    ``n - A = β √A``; β is solved so the approximate service level (or ASA) meets the target. A
    cross-check of :func:`erlang_c_agents`, usually within one agent of it.
    """
    _check_targets(service_level, answer_within, asa, 1.0)
    if load == 0:
        return 0
    root = math.sqrt(load)

    def p_wait(beta: float) -> float:
        # Φ(β)/φ(β) as a ratio of logs, so a large β does not overflow φ's exponent
        return 1.0 / (1.0 + beta * math.exp(float(norm.logcdf(beta)) - float(norm.logpdf(beta))))

    betas: list[float] = []
    if service_level is not None:

        def short_of_sl(beta: float) -> float:
            return 1.0 - p_wait(beta) * math.exp(-beta * root * answer_within / aht) - service_level

        betas.append(_root(short_of_sl))
    if asa is not None:
        target_asa = asa

        def over_asa(beta: float) -> float:
            return target_asa - p_wait(beta) * aht / (beta * root)

        betas.append(_root(over_asa))
    return math.ceil(load + max(betas) * root - 1e-9)


def _root(increasing: Callable[[float], float]) -> float:
    low, high = 1e-9, 1.0
    while increasing(high) < 0:
        high *= 2
        if high > 1e6:  # pragma: no cover - targets below 1 are always reachable
            raise ArithmeticError("square-root staffing: no β meets the target")
    if increasing(low) >= 0:
        return low
    return float(brentq(increasing, low, high, xtol=1e-10))


def _erlang_a_log_pi(agents: int, lam: float, mu: float, theta: float) -> FloatArray:
    """Unnormalised log stationary probabilities of M/M/n+M, states 0 .. n + J."""
    log_lam = math.log(lam)
    k = np.arange(1, agents + 1, dtype=np.float64)
    below = np.concatenate(([0.0], np.cumsum(log_lam - np.log(k * mu))))
    chunks = [below]
    last, peak, j0, total = float(below[-1]), float(below.max()), 0, 0
    while True:
        size = 256 if total < 4096 else total
        j = np.arange(j0 + 1, j0 + size + 1, dtype=np.float64)
        rates = agents * mu + j * theta
        chunk = last + np.cumsum(log_lam - np.log(rates))
        chunks.append(chunk)
        total += size
        j0 += size
        last = float(chunk[-1])
        peak = max(peak, float(chunk.max()))
        # decreasing from here on (arrivals slower than departures) and far below the peak
        if rates[-1] > lam and last < peak - LOG_CUT:
            break
        if total > MAX_WAITING_STATES:
            raise ArithmeticError(
                f"Erlang A: patience {1 / theta:.0f}s with load {lam / mu:.1f} on {agents} agents needs more than "
                f"{MAX_WAITING_STATES} waiting states; use Erlang C or a shorter patience"
            )
    log_pi = np.concatenate(chunks)
    keep = int(np.nonzero(log_pi >= peak - LOG_CUT)[0].max()) + 1
    return log_pi[: max(keep, agents + 1)]


def _answered_within(waiting: FloatArray, service_rate: float, theta: float, t: float) -> float:
    """P(answered within t and found everyone busy): mass absorbed in 'answered' by time t.

    Uniformization (Jensen's method) of the tagged caller's chain: with ``Λ`` the largest exit
    rate, the chain jumps at Poisson(Λt) epochs and the answer is a Poisson mixture of the jump
    chain's absorbed mass. Every term is non-negative, so nothing cancels; the Poisson tail left
    out is below 1e-13.
    """
    if t == 0 or waiting.size == 0:
        return 0.0
    ahead = np.arange(waiting.size, dtype=np.float64)
    move = service_rate + ahead * theta  # rate of moving up one place (answered from place 0)
    uniform = float(move[-1] + theta)
    mean = uniform * t
    # the Poisson tail past mean + 10 sd + 25 is far below 1e-13 for every mean
    steps = int(mean + 10.0 * math.sqrt(mean) + 25.0)
    jumps = np.arange(1, steps + 1, dtype=np.float64)
    weights = np.exp(jumps * math.log(mean) - mean - gammaln(jumps + 1.0))
    up = move / uniform
    stay = 1.0 - (move + theta) / uniform
    mass = waiting.copy()
    absorbed, total = 0.0, 0.0
    for k in range(steps):
        absorbed += float(mass[0] * up[0])
        moved = mass[1:] * up[1:]
        mass *= stay
        mass[:-1] += moved
        total += float(weights[k]) * absorbed
        if k % 16 == 15 and mass.sum() < 1e-15:  # all answered or gone: later weights add the same mass
            total += absorbed * float(weights[k + 1 :].sum())
            break
    return total


def _check(agents: int, load: float) -> None:
    if agents < 0:
        raise ValueError(f"agents must be >= 0, got {agents}")
    if not (load >= 0 and math.isfinite(load)):
        raise ValueError(f"load must be a finite number >= 0, got {load}")


def _check_targets(service_level: float | None, answer_within: float, asa: float | None, max_occupancy: float) -> None:
    if service_level is None and asa is None:
        raise ValueError("give a service-level target, an ASA target or both")
    if service_level is not None and not 0 < service_level < 1:
        raise ValueError(f"service level must be between 0 and 1 (exclusive), got {service_level}")
    if answer_within < 0:
        raise ValueError(f"answer_within must be >= 0 seconds, got {answer_within}")
    if asa is not None and asa <= 0:
        raise ValueError(f"ASA target must be > 0 seconds, got {asa}")
    if not 0 < max_occupancy <= 1:
        raise ValueError(f"max occupancy must be in (0, 1], got {max_occupancy}")


__all__ = [
    "QueueMetrics",
    "erlang_a_agents",
    "erlang_a_metrics",
    "erlang_b",
    "erlang_c",
    "erlang_c_agents",
    "erlang_c_arrays",
    "erlang_c_metrics",
    "erlang_c_staff",
    "offered_load",
    "sqrt_staffing",
]
