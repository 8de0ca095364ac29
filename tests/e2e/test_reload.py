"""Hot reload on the running controller: bad YAML is refused with file and line and calls go on with
the last good config; a good change applies to new calls without dropping the ones in progress."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.rig import Controller, Records, inputs, nodes_visited, wait_for
from tests.e2e.test_ivr_calls import call, caller_id


@pytest.fixture
async def flows(config_dir: Path, rig: Controller) -> AsyncIterator[Path]:
    """The tests' flow file in the controller's config folder; restored and reloaded afterwards."""
    path = config_dir / "dialplan" / "flows.yaml"
    original = path.read_text()
    yield path
    path.write_text(original)
    await reload_back(rig)


async def reload_back(rig: Controller) -> None:
    status, body = await rig.reload()
    assert status == 200, body


async def test_given_syntax_error_when_reload_requested_then_refused_with_file_line_and_calls_go_on(
    rig: Controller, records: Records, flows: Path
) -> None:
    before = await rig.health()
    assert before is not None
    flows.write_text(flows.read_text().replace("    type: menu\n", "    type: [menu\n", 1))
    status, body = await rig.reload()
    assert status == 422 and body["ok"] is False
    assert body["version"] == before["config_version"]
    (error,) = body["errors"]
    assert error.startswith(f"{flows}:") and "YAML syntax error" in error
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("1").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    assert (await records.finished_for(caller)).outcome == "contained"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('      "1": t_done\n      "9"', '      "1": t_gone\n      "9"', "goes to 't_gone', which is not defined"),
        ('      "9": t_english', '      "X": t_english', "choice key 'X' is not a single DTMF key"),
        (
            "    prompt: [t_bad]\n    outcome: ivr_fallback",
            "    prompt: [t_nope]\n    outcome: ivr_fallback",
            "prompt 't_nope' is not defined",
        ),
    ],
)
async def test_given_broken_reference_when_reload_requested_then_refused_naming_the_line(
    rig: Controller, flows: Path, old: str, new: str, message: str
) -> None:
    text = flows.read_text()
    assert old in text
    flows.write_text(text.replace(old, new, 1))
    line = flows.read_text().splitlines().index(new.splitlines()[0]) + 1
    status, body = await rig.reload()
    assert status == 422
    (error,) = body["errors"]
    assert message in error and error.startswith(f"{flows}:")
    assert abs(int(error.split(":")[1]) - line) <= 3, (error, line)


async def test_given_wrong_admin_token_when_reload_requested_then_401(rig: Controller) -> None:
    status, body = await rig.reload(token="not-the-token")
    assert status == 401 and "unauthorized" in body["error"]


async def test_given_call_in_progress_when_good_config_reloaded_by_sighup_then_call_finishes_on_old_config(
    rig: Controller, records: Records, flows: Path
) -> None:
    before = await rig.health()
    assert before is not None
    old_caller, new_caller = caller_id(), caller_id()
    # the in-progress call waits 2.5 s in t_menu (timeout 1.5 s -> first retry) before pressing 1
    in_progress = asyncio.create_task(call(rig, "7001", old_caller).pause(2500).dtmf("1").expect_bye(20_000).run())
    await asyncio.sleep(1.0)  # let the call reach the menu before the reload
    flows.write_text(flows.read_text().replace('"1": t_done\n      "9"', '"1": t_fallback\n      "9"', 1))
    rig.signal(signal.SIGHUP)

    async def reloaded() -> bool:
        health = await rig.health()
        return bool(health and health["config_version"] != before["config_version"])

    await wait_for(reloaded, timeout=20, what="config reloaded after SIGHUP")
    result = await in_progress
    assert result.remote_bye, result.explain()
    old = await records.finished_for(old_caller)
    assert nodes_visited(old)[-1] == "t_done" and old.outcome == "contained"  # the old flow
    new_result = await call(rig, "7001", new_caller).pause(500).dtmf("1").expect_bye(15_000).run()
    assert new_result.remote_bye
    new = await records.finished_for(new_caller)
    assert inputs(new) == [("t_menu", "1", "choice")]
    assert nodes_visited(new)[-1] == "t_fallback"  # the new flow
