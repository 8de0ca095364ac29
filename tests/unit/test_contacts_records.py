"""The records layer's pure parts: step parsing, JSON views, the UTC column type, URL helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Dialect, make_url

from contacts import ContactRecord, Outcome, ParcelStatus, async_url, make_step, parse_step
from contacts.cli import PATH_WIDTH, format_path, format_table
from contacts.db import alembic_config, head_revision, safe_url, sqlite_path
from contacts.models import UTCDateTime

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _dialect(driver: str) -> Dialect:
    return make_url(f"{driver}://").get_dialect()()


def _record(**overrides: Any) -> ContactRecord:
    values: dict[str, Any] = {
        "id": "c-1",
        "channel_id": "1700000000.1",
        "caller": "+390612345678",
        "dialled": "800100100",
        "language": "it",
        "started_at": T0,
    }
    values.update(overrides)
    return ContactRecord(**values)


def test_given_typed_values_when_make_step_then_iso_utc_timestamp() -> None:
    step = make_step("main", "menu", "1", at=T0.astimezone(timezone(timedelta(hours=2))))

    assert step == {"node": "main", "kind": "menu", "digits": "1", "note": None, "at": "2025-03-01T09:00:00+00:00"}
    assert parse_step(step) == step


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "menu", "digits": None, "at": "2025-03-01T09:00:00+00:00"}, "'node'"),
        ({"node": "main", "kind": "", "digits": None, "at": "2025-03-01T09:00:00+00:00"}, "'kind'"),
        ({"node": "main", "kind": "menu", "digits": 1, "at": "2025-03-01T09:00:00+00:00"}, "'digits'"),
        ({"node": "main", "kind": "menu", "digits": None, "at": "yesterday"}, "'at'"),
        ({"node": "main", "kind": "menu", "digits": None, "at": "2025-03-01T09:00:00"}, "naive"),
        ({"node": "main", "kind": "input", "digits": None, "note": 3, "at": "2025-03-01T09:00:00+00:00"}, "'note'"),
    ],
)
def test_given_malformed_step_when_parsed_then_value_error_names_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_step(raw)


def test_given_step_with_datetime_when_parsed_then_at_becomes_iso_text() -> None:
    assert parse_step({"node": "n", "kind": "k", "digits": None, "at": T0})["at"] == T0.isoformat()


def test_given_record_when_to_json_dict_then_json_safe_with_iso_timestamps() -> None:
    record = _record(
        ended_at=T0 + timedelta(seconds=61),
        ivr_path=(make_step("main", "menu", "2", at=T0),),
        outcome=Outcome.COMPLAINT,
        data={"reason": "lost parcel"},
    )

    encoded = json.loads(json.dumps(record.to_json_dict()))

    assert encoded["started_at"] == "2025-03-01T09:00:00+00:00"
    assert encoded["ended_at"] == "2025-03-01T09:01:01+00:00"
    assert encoded["ivr_ended_at"] is None
    assert encoded["outcome"] == "complaint"
    assert encoded["ivr_path"][0]["digits"] == "2"
    assert encoded["data"] == {"reason": "lost parcel"}
    assert set(encoded) >= {"id", "caller", "dialled", "language", "recording", "node", "wrapup_code"}


def test_given_parcel_when_to_json_dict_then_iso_timestamp() -> None:
    parcel = ParcelStatus(code="RR1", status="delivered", updated_at=T0)

    assert parcel.to_json_dict() == {
        "code": "RR1",
        "status": "delivered",
        "updated_at": "2025-03-01T09:00:00+00:00",
        "detail": None,
    }


def test_given_outcome_when_compared_then_plain_string() -> None:
    assert Outcome("operators_unavailable") is Outcome.OPERATORS_UNAVAILABLE
    assert str(Outcome.ABANDONED_QUEUE) == "abandoned_queue"


def test_given_sqlite_dialect_when_binding_aware_time_then_naive_utc_and_back_aware() -> None:
    column = UTCDateTime()
    rome = T0.astimezone(timezone(timedelta(hours=1)))

    stored = column.process_bind_param(rome, _dialect("sqlite+aiosqlite"))
    loaded = column.process_result_value(stored, _dialect("sqlite+aiosqlite"))

    assert stored == datetime(2025, 3, 1, 9, 0)
    assert loaded == T0 and loaded is not None and loaded.tzinfo is UTC
    assert column.process_bind_param(rome, _dialect("postgresql+asyncpg")) == T0


def test_given_naive_time_when_bound_then_value_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), _dialect("sqlite+aiosqlite"))


def test_given_urls_without_async_driver_when_async_url_then_async_driver_chosen() -> None:
    assert async_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql+asyncpg://h/db").drivername == "postgresql+asyncpg"


def test_given_url_with_password_when_safe_url_then_password_masked() -> None:
    assert "secret" not in safe_url("postgresql://u:secret@h/db")
    assert safe_url("not a url") == "<invalid database URL>"


def test_given_sqlite_and_other_urls_when_sqlite_path_then_file_only_for_sqlite_files() -> None:
    assert sqlite_path("sqlite+aiosqlite:////var/lib/unico/unico.db") == Path("/var/lib/unico/unico.db")
    assert sqlite_path("sqlite+aiosqlite://") is None
    assert sqlite_path("postgresql://h/db") is None


def test_given_no_ini_file_when_alembic_config_built_then_script_location_is_the_package() -> None:
    config = alembic_config("sqlite:///x.db")

    assert Path(config.get_main_option("script_location") or "").joinpath("env.py").is_file()
    assert head_revision() == "0005"


def test_given_records_when_format_table_then_aligned_rows_with_path_digits() -> None:
    long_path = tuple(
        step
        for i in range(20)
        for step in (
            make_step(f"node{i}", "menu", None, at=T0),
            make_step(f"node{i}", "input", str(i), at=T0, note="choice"),
        )
    )
    records = [
        _record(id="c-2", caller=None, ivr_path=long_path),
        _record(ended_at=T0 + timedelta(seconds=42), outcome="contained", recording="r/c-1.wav"),
    ]

    lines = format_table(records).splitlines()

    assert lines[0].split()[:3] == ["STARTED", "(UTC)", "SECS"]
    assert "open" in lines[1] and " - " in lines[1] and "node0:0 > node1:1" in lines[1]
    assert "42" in lines[2] and "r/c-1.wav" in lines[2]
    assert len(format_path(long_path)) == PATH_WIDTH
    assert format_path((make_step("bye", "prompt", None, at=T0),)) == "bye"
    # retries show every key sequence on their node; the caller's hang-up adds no entry
    retried = (
        make_step("code", "collect", None, at=T0),
        make_step("code", "input", "12", at=T0, note="invalid"),
        make_step("code", "input", "1234", at=T0, note="valid"),
        make_step("code", "end", None, at=T0, note="caller hung up"),
    )
    assert format_path(retried) == "code:12:1234"
