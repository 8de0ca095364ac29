"""A whole plan on the shipped configuration: forecast, staffing, shifts, roster, files, CLI and API."""

from __future__ import annotations

import base64
import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from ivr.config import IvrConfig, load_config
from unico.cli import main
from wfm import (
    InfeasiblePlan,
    IntervalTable,
    PlanInputError,
    PlanRequest,
    PlanResult,
    PlanSetup,
    RosterRules,
    StaffingTargets,
    forecast_from_table,
    make_plan,
    read_interval_csv,
    rows_from_json,
    synthetic_history,
    table_from_rows,
    write_outputs,
)
from wfm.api import plan_json
from wfm.opening import Area
from wfm.output import STAFFING_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
CONFIG: IvrConfig = load_config(ROOT / "dialplan", ROOT / "skills")
SETUP = PlanSetup.from_config(CONFIG)
AREAS = {name: Area(name, calendar) for name, calendar in CONFIG.calendars.items()}
# eight weeks ending on Sunday 5 April 2026, so the planned week starts on Easter Monday
HISTORY_START = date(2026, 2, 9)
EASTER_MONDAY = date(2026, 4, 6)


def _area_of(queue: str) -> Area:
    return AREAS[CONFIG.queues[queue].calendar if queue in CONFIG.queues else "customers"]


def _history(queues: list[str] | None = None) -> IntervalTable:
    return synthetic_history(
        queues or sorted(CONFIG.queues), area_of=_area_of, first_day=HISTORY_START, weeks=8, daily_calls=500.0, seed=11
    )


def _write_csv(table: IntervalTable, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "queue", "offered", "aht"])
        for queue, offered in table.offered.items():
            for day, slot in np.argwhere(offered > 0):
                when = datetime.combine(table.first_day + timedelta(days=int(day)), time()) + timedelta(
                    minutes=int(slot) * table.interval_minutes
                )
                aht = table.handle_seconds[queue][day, slot] / table.handled[queue][day, slot]
                writer.writerow([when.isoformat(), queue, int(offered[day, slot]), round(float(aht), 1)])
    return path


@pytest.fixture(scope="module")
def planned() -> PlanResult:
    return make_plan(_history(), SETUP, PlanRequest(roster=RosterRules(time_limit=20)))


def test_given_eight_weeks_when_planned_then_every_open_interval_covered_at_the_lp_bound(planned: PlanResult) -> None:
    assert planned.staffing.first_day == EASTER_MONDAY and planned.staffing.days == 7
    for name, shifts in planned.shifts.queues.items():
        table = planned.staffing.queues[name]
        assert np.all(shifts.coverage >= table.positions), name
        assert np.all(shifts.coverage[~table.open] == 0), name
        assert shifts.total == pytest.approx(shifts.lp_bound) and shifts.optimal, name
        assert shifts.total > 0
        last_start = (19 if table.area == "internal" else 20) * 2 - 12  # a 6-hour shift ends by closing
        assert np.all(np.nonzero(shifts.starts)[1] <= last_start), name
        assert np.all(table.service_level[table.positions > 0] >= 0.8 - 1e-9)


def test_given_easter_monday_in_the_horizon_when_planned_then_closed_exception_and_no_shifts(
    planned: PlanResult,
) -> None:
    assert any(text.startswith("2026-04-06 ") for text in planned.forecast.exceptions)
    for shifts in planned.shifts.queues.values():
        assert shifts.starts[0].sum() == 0 and shifts.starts[6].sum() == 0  # Easter Monday, Sunday


def test_given_history_when_planned_then_held_out_accuracy_for_each_queue_and_all(planned: PlanResult) -> None:
    rows = planned.accuracy or []
    assert [r.queue for r in rows] == [*sorted(CONFIG.queues), "*"]
    assert rows[-1].week_start == date(2026, 3, 30)
    assert all(r.wape < r.naive_wape for r in rows)


def test_given_roster_rules_when_planned_then_shipped_operators_work_only_queues_they_can_serve(
    planned: PlanResult,
) -> None:
    roster = planned.roster
    assert roster is not None and roster.assignments
    for a in roster.assignments:
        queue, operator = CONFIG.queues[a.queue], CONFIG.operators[a.operator]
        assert queue.tier in operator.tiers and operator.has_skills(dict(queue.required_skills))
        assert a.day.weekday() != 6
    assert len({(a.operator, a.day) for a in roster.assignments}) == len(roster.assignments)
    assert roster.planned == sum(s.total for s in planned.shifts.queues.values())
    assert any("have nobody who can work them" in note for note in planned.notes)  # 6 operators are too few


def test_given_plan_when_written_then_tables_chart_and_a_forecast_that_plans_the_same(
    planned: PlanResult, tmp_path: Path
) -> None:
    files = write_outputs(planned, tmp_path)

    assert sorted(f.name for f in files) == sorted(
        ["staffing.csv", "shifts.csv", "forecast.csv", "summary.json", "roster.csv", "unfilled.csv", "coverage.png"]
    )
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    staffing = list(csv.DictReader(io.StringIO((tmp_path / "staffing.csv").read_text())))
    assert tuple(staffing[0]) == STAFFING_COLUMNS
    assert all(int(row["scheduled"]) >= int(row["positions"]) for row in staffing)
    shifts = list(csv.DictReader(io.StringIO((tmp_path / "shifts.csv").read_text())))
    assert sum(int(r["operators"]) for r in shifts) == sum(s.total for s in planned.shifts.queues.values())
    assert {(r["start"], r["end"]) for r in shifts} <= {
        (f"{h:02d}:{m:02d}", f"{h + 6:02d}:{m:02d}") for h in range(8, 15) for m in (0, 30)
    }
    again = read_interval_csv(tmp_path / "forecast.csv", interval_minutes=30, zone=planned.forecast.zone)
    replanned = make_plan(forecast_from_table(again, default_aht=180), SETUP, PlanRequest())
    assert {n: s.total for n, s in replanned.shifts.queues.items()} == {
        n: s.total for n, s in planned.shifts.queues.items()
    }


def _forecast(rows: list[tuple[str, str, float]]) -> IntervalTable:
    """A forecast table from ``(local timestamp, queue, offered)`` rows, AHT 200 s."""
    items = [{"timestamp": ts, "queue": q, "offered": n, "aht": 200} for ts, q, n in rows]
    zone = AREAS["customers"].calendar.zone
    return table_from_rows(rows_from_json(items, name="forecast"), interval_minutes=30, zone=zone)


def test_given_traffic_while_closed_when_planned_then_refused_or_left_out_on_request() -> None:
    table = _forecast([("2026-03-02T10:00", "general", 40), ("2026-03-02T20:30", "general", 40)])
    forecast = forecast_from_table(table, default_aht=180)
    with pytest.raises(InfeasiblePlan, match=r"general, Mon 2026-03-02 20:30-21:00: \d+ operator\(s\) needed but"):
        make_plan(forecast, SETUP, PlanRequest())
    result = make_plan(forecast, SETUP, PlanRequest(closed_traffic="ignore"))
    assert "general: 40.0 forecast call(s) in closed intervals left out" in result.notes
    assert result.shifts.queues["general"].coverage[0, 41] == 0


def test_given_no_traffic_when_planned_then_no_shifts_unless_someone_must_be_on() -> None:
    forecast = forecast_from_table(_forecast([("2026-03-02T10:00", "general", 0)]), default_aht=180)
    assert make_plan(forecast, SETUP, PlanRequest()).shifts.queues["general"].total == 0
    staffed = make_plan(forecast, SETUP, PlanRequest(targets=StaffingTargets(min_agents=1, shrinkage=0)))
    assert staffed.shifts.queues["general"].total == 2  # 08:00-14:00 and 14:00-20:00


def test_given_unknown_queue_when_planned_then_default_area_used_and_said() -> None:
    forecast = forecast_from_table(_forecast([("2026-03-02T10:00", "legacy_ivr", 20)]), default_aht=180)
    result = make_plan(forecast, SETUP, PlanRequest())
    assert result.shifts.queues["legacy_ivr"].area == "customers"
    assert "queue 'legacy_ivr' is not in skills/queues.yaml: planned with area 'customers'" in result.notes
    with pytest.raises(PlanInputError, match="calendar 'nowhere' is not defined"):
        make_plan(forecast, SETUP, PlanRequest(default_area="nowhere"))


def test_given_shift_step_off_the_interval_grid_when_requested_then_validation_error() -> None:
    with pytest.raises(ValueError, match="multiple of the 30-minute interval"):
        PlanRequest.model_validate({"interval_minutes": 30, "shifts": {"step_minutes": 15}})


# -- the command -------------------------------------------------------------------------------


def test_given_history_csv_when_unico_plan_then_report_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write_csv(_history(["general", "internal_it"]), tmp_path / "history.csv")
    out = tmp_path / "plan"
    status = main(
        ["plan", "--history", str(source), "--config", str(ROOT), "--out", str(out), "--step", "30", "--roster"]
    )
    printed = capsys.readouterr()

    assert status == 0, printed.err
    assert "plan 2026-04-06 + 7 days, 30-minute intervals, 6-hour shifts starting every 30 minutes" in printed.out
    # the CSV's last row is Saturday 4 April (nobody calls a closed Sunday): the last 7 days are held out
    assert "accuracy on the held-out week from 2026-03-29: WAPE" in printed.out
    assert "roster: optimal, gap" in printed.out
    assert (out / "shifts.csv").exists() and (out / "coverage.png").exists() and (out / "roster.csv").exists()


def test_given_bad_csv_when_unico_plan_then_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("timestamp,queue,offered\n2026-03-02T10:00,general,many\n")
    assert main(["plan", "--history", str(source), "--config", str(ROOT), "--out", str(tmp_path)]) == 2
    assert f"{source}:2: offered: " in capsys.readouterr().err


def test_given_closed_hours_traffic_when_unico_plan_then_exit_1_naming_the_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "forecast.csv"
    source.write_text("timestamp,queue,offered,aht\n2026-03-07T19:30,internal_it,30,200\n")
    assert main(["plan", "--forecast", str(source), "--config", str(ROOT), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "internal_it, Sat 2026-03-07 19:30-20:00:" in err and "area 'internal' is closed then" in err


def test_given_bad_roster_rules_when_unico_plan_then_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "forecast.csv"
    source.write_text("timestamp,queue,offered,aht\n2026-03-02T10:00,general,30,200\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults:\n  max_shifts_per_week: 5\noperators:\n  op1001:\n    days_off: [sunday]\n")
    assert main(["plan", "--forecast", str(source), "--config", str(ROOT), "--rules", str(rules)]) == 2
    assert f"{rules}:5: operators.op1001.days_off" in capsys.readouterr().err


def test_given_empty_contacts_database_when_unico_plan_then_exit_2_no_traffic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    argv = [
        "plan",
        "--contacts",
        "--db-url",
        url,
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-09",
        "--config",
        str(ROOT),
    ]
    assert main(argv) == 2
    assert "the input has no queue with traffic" in capsys.readouterr().err


# -- the API -----------------------------------------------------------------------------------

FORECAST_ROWS = [
    {"timestamp": "2026-03-02T09:00:00+01:00", "queue": "general", "offered": 60, "aht": 200},
    {"timestamp": "2026-03-02T15:00:00+01:00", "queue": "general", "offered": 30},
]


def test_given_forecast_json_when_planned_then_tables_csv_and_chart() -> None:
    answer = plan_json({"forecast": FORECAST_ROWS, "chart": True, "shifts": {"step_minutes": 60}}, SETUP)

    assert answer["summary"]["source"] == "forecast" and answer["summary"]["step_minutes"] == 60
    assert answer["shifts_csv"].splitlines()[0] == "queue,area,date,start,end,operators"
    assert sum(r["operators"] for r in answer["shifts"]) == answer["summary"]["total_shifts"] > 0
    row = next(r for r in answer["staffing"] if r["start"] == "09:00")
    assert row["offered"] == 60 and row["aht"] == 200 and row["scheduled"] >= row["positions"] > 0
    assert base64.b64decode(answer["chart_png"])[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"forecast": [FORECAST_ROWS[0], {**FORECAST_ROWS[1], "offered": -1}]}, "forecast[1].offered: "),
        ({"history": FORECAST_ROWS, "forecast": FORECAST_ROWS}, "give exactly one of 'history' or 'forecast'"),
        ({}, "give exactly one of 'history' or 'forecast'"),
        ({"forecast": FORECAST_ROWS, "targets": {"shrinkage": 1.5}}, "targets.shrinkage: "),
        ({"forecast": FORECAST_ROWS, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_given_bad_body_when_planned_then_plan_input_error_names_the_field(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(PlanInputError) as info:
        plan_json(body, SETUP)
    assert any(problem in p for p in info.value.problems), info.value.problems


async def test_given_admin_api_when_plan_posted_then_token_checked_and_plan_answered() -> None:
    from unico.controller import Controller
    from unico.web import make_app

    controller = SimpleNamespace(settings=SimpleNamespace(admin_token=SecretStr("s3cret")), config=CONFIG, acd=None)
    app = make_app(cast(Controller, controller))
    auth = {"Authorization": "Bearer s3cret"}
    async with TestClient(TestServer(app)) as client:
        refused = await client.post("/api/plan", json={"forecast": FORECAST_ROWS})
        assert refused.status == 401
        answered = await client.post("/api/plan", json={"forecast": FORECAST_ROWS}, headers=auth)
        assert answered.status == 200
        assert (await answered.json())["summary"]["total_shifts"] > 0
        bad = await client.post("/api/plan", data=b"{not json", headers=auth)
        assert bad.status == 400
        closed = [{"timestamp": "2026-03-02T21:00:00+01:00", "queue": "general", "offered": 50, "aht": 200}]
        refused_plan = await client.post("/api/plan", json={"forecast": closed}, headers=auth)
        assert refused_plan.status == 422
        assert "is closed then" in (await refused_plan.json())["problems"][0]
        big = io.BytesIO(b" " * (33 * 1024 * 1024))
        too_big = await client.post("/api/plan", data=big, headers=auth)
        assert too_big.status == 413
