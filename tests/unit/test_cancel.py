"""``raise_if_cancelled``: a loop that survives errors still ends when its task was cancelled and
the cancel was swallowed or turned into an error below it."""

from __future__ import annotations

import asyncio

import pytest

from unico.cancel import raise_if_cancelled


async def test_given_a_swallowed_cancel_then_the_next_check_ends_the_task() -> None:
    laps: list[int] = []
    inside = asyncio.Event()

    async def loop() -> None:
        while True:
            try:
                inside.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass  # what a library below may do
            laps.append(1)
            raise_if_cancelled()

    task = asyncio.create_task(loop())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)
    assert laps == [1]


async def test_given_no_cancel_or_one_already_handled_then_the_check_does_nothing() -> None:
    raise_if_cancelled()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):  # its own cancel: uncancelled when it turns it into TimeoutError
            await asyncio.sleep(1)
    raise_if_cancelled()
