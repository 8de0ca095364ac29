"""Headless Chromium for the console's tests, driven by playwright.

The browser is Debian's ``chromium`` package (``scripts/bootstrap.sh`` installs it); playwright
is only the driver and never downloads a browser of its own (no ``playwright install``). Every
page records its JavaScript errors and failed console messages; :meth:`Browser.close` fails the
test if there were any, so a script error never passes silently. Screenshots go to
``tests/artifacts/console/<name>.png``.

Example::

    async with chromium() as browser:
        page = await browser.page(f"{base}/wallboard")
        await sign_in(page, token)
        await wait_for_value(page, '[data-queue="tq_basic"] [data-kpi="waiting"]', "1")
        await browser.screenshot(page, "wallboard")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser as PwBrowser
from playwright.async_api import ConsoleMessage, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "console"


class Browser:
    def __init__(self, browser: PwBrowser) -> None:
        self.browser = browser
        self.errors: list[str] = []

    async def page(self, url: str, *, width: int = 1400, height: int = 900) -> Page:
        """A new tab (own session storage) at ``url``, its script errors recorded."""
        context = await self.browser.new_context(viewport={"width": width, "height": height}, locale="it-IT")
        page = await context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{url}: {error}"))
        page.on("console", lambda message: self._console(url, message))
        await page.goto(url)
        return page

    def _console(self, url: str, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{url}: console: {message.text}")

    async def screenshot(self, page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@asynccontextmanager
async def chromium(*, allow_errors: tuple[str, ...] = ()) -> AsyncIterator[Browser]:
    """Headless Chromium for one test; fails the test on script errors not matching ``allow_errors``."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh installs Debian's chromium")
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        wrapped = Browser(browser)
        try:
            yield wrapped
        finally:
            for context in browser.contexts:
                await context.close()
            await browser.close()
        unexpected = [e for e in wrapped.errors if not any(allowed in e for allowed in allow_errors)]
        assert not unexpected, "script errors in the page:\n" + "\n".join(unexpected)


async def sign_in(page: Page, token: str, *, follow: str | None = None) -> None:
    """Fill the page's token form (and the operator to follow) and wait for the live socket."""
    await page.fill("#token", token)
    if follow is not None:
        await page.fill("#follow", follow)
    await page.click('#login-form button[type="submit"]')
    await page.wait_for_selector('#conn[data-conn="live"]', timeout=10_000)


async def value(page: Page, selector: str, attribute: str = "data-value") -> str | None:
    """The attribute of the first element matching ``selector`` (None when there is none)."""
    element = await page.query_selector(selector)
    return None if element is None else await element.get_attribute(attribute)


async def wait_for_value(
    page: Page, selector: str, expected: str, *, attribute: str = "data-value", timeout: float = 10.0
) -> float:
    """Poll until ``selector``'s attribute equals ``expected``; returns the seconds it took."""
    started = time.monotonic()
    last: str | None = None
    while time.monotonic() - started < timeout:
        last = await value(page, selector, attribute)
        if last == expected:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{selector} [{attribute}] is {last!r}, expected {expected!r} within {timeout}s")
