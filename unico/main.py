"""``unico run``: start the controller and serve calls until SIGTERM/SIGINT; SIGHUP reloads the config;
SIGUSR2 logs the memory before and after a heap trim, and writes a snapshot when ``UNICO_TRACEMALLOC``
is set (``unico.memtrace``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable

from contacts import ContactStore, upgrade
from ivr.config import load_config
from ivr.source import ConfigErrors
from ivr.tts import TtsError
from unico import memtrace
from unico.controller import Controller, prepare_prompts
from unico.settings import Settings
from unico.web import start_site

log = logging.getLogger("unico")


def prompt_sync(settings: Settings) -> Callable[[], None] | None:
    """Copying prompts into the local Asterisk's root; a remote Asterisk must mount them itself."""
    if not settings.asterisk_managed:
        return None
    from unico import pbx

    def sync() -> None:
        pbx.sync_prompts(settings, settings.tts_dir)

    return sync


async def serve(settings: Settings) -> int:
    memtrace.start(settings.tracemalloc)
    try:
        config = load_config(settings.dialplan_dir, settings.skills_dir)
    except ConfigErrors as exc:
        print(f"configuration refused:\n{exc}", file=sys.stderr)
        return 1
    sync = prompt_sync(settings)
    try:
        await asyncio.to_thread(prepare_prompts, config, settings, sync)
    except TtsError as exc:
        print(f"cannot render prompts: {exc}", file=sys.stderr)
        return 1
    await upgrade(settings.db_url)
    store = ContactStore(settings.db_url)
    await store.open()
    controller = Controller(settings, config, store, sync_prompts=sync)
    runner = await start_site(controller, settings.web_host, settings.web_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[object]] = set()

    def on_hup() -> None:
        task: asyncio.Task[object] = loop.create_task(controller.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGUSR2, memtrace.Tracer(settings.state_dir / "memory").on_signal)
    await controller.start()
    # Everything built so far (config, modules, the ORM's metadata) lives as long as the process:
    # take it out of the cyclic collector's view, so a full collection walks only what calls
    # create. bench/event_replay.py measured 40-120 ms stalls from full collections without it.
    gc.collect()
    gc.freeze()
    log.info(
        "unico controller up: app %r on %s, admin http://%s:%d, config %s",
        settings.ari_app,
        settings.ari_url,
        settings.web_host,
        settings.web_port,
        config.version,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await controller.close()
        await runner.cleanup()
        await store.close()
    return 0
