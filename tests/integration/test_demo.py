"""`lit-gan demo` in a real browser: Playwright driving Debian's Chromium (`.ci/run` installs it;
Playwright's own browser download is not used)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import torch
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from lit_gan import demo
from lit_gan.models import CDCGAN
from tests.conftest import tiny
from tests.test_demo import get, running

pytestmark = pytest.mark.integration

SAMPLES, BETWEEN, STRIP = "#grid", "#between", "#strip"


def chromium() -> str:
    found = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).is_file()), None)
    if found is None:
        pytest.fail("no chromium found for the browser test: install it with `sudo apt-get install -y chromium` "
                    "(Debian/Ubuntu; bash .ci/run does this)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[demo.Server]:
    path = tmp_path_factory.mktemp("demo") / "cdcgan.ckpt"
    model = tiny(CDCGAN, num_classes=10)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    yield from running(path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, server: demo.Server) -> Iterator[Page]:
    page = browser.new_page(accept_downloads=True)
    page.set_default_timeout(10_000)  # a failure in seconds, not 30
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready]")
    for image in (SAMPLES, BETWEEN, STRIP):
        page.wait_for_function("(s) => document.querySelector(s).src.startsWith('data:image/png')", arg=image)
    yield page
    page.close()
    assert not problems, problems


def shown(page: Page, image: str) -> bytes:
    """The PNG an image of the page shows (a data: URL)."""
    src = page.get_attribute(image, "src") or ""
    return base64.b64decode(src.split(",", 1)[1])


def changed(page: Page, image: str, before: bytes) -> bytes:
    """Wait until `image` shows another picture than `before`, and return it."""
    page.wait_for_function("([s, before]) => !document.querySelector(s).src.endsWith(before)",
                           arg=[image, base64.b64encode(before).decode()])
    return shown(page, image)


def commit(page: Page, field: str, value: str) -> None:
    """Type `value` into `field` and press Enter, as a user does."""
    page.fill(field, value)
    page.press(field, "Enter")


def test_the_page_shows_the_model_and_choosing_a_class_changes_the_images(page, server):
    assert "cdcgan.ckpt" in page.inner_text("#model") and "10 classes" in page.inner_text("#model")
    assert shown(page, SAMPLES) == get(server, "/samples.png?seed=0&class=0&batch=16")[2]
    grid, between = shown(page, SAMPLES), shown(page, BETWEEN)
    commit(page, "#class", "3")
    assert changed(page, SAMPLES, grid) == get(server, "/samples.png?seed=0&class=3&batch=16")[2]
    assert changed(page, BETWEEN, between) == get(server, "/interpolate.png?seed_a=0&seed_b=1&class=3&t=0.5")[2]
    grid = shown(page, SAMPLES)
    commit(page, "#seed", "7")
    assert changed(page, SAMPLES, grid) == get(server, "/samples.png?seed=7&class=3&batch=16")[2]


def test_the_slider_moves_the_interpolated_image(page, server):
    before = shown(page, BETWEEN)
    page.fill("#t", "0.9")  # a range input: Playwright sets it and fires input/change, as dragging does
    near_b = changed(page, BETWEEN, before)
    assert near_b == get(server, "/interpolate.png?seed_a=0&seed_b=1&class=0&t=0.9")[2]
    assert page.inner_text("#t-value") == "0.90"
    page.fill("#t", "0")
    assert changed(page, BETWEEN, near_b) == get(server, "/interpolate.png?seed_a=0&seed_b=1&class=0&t=0")[2]


@pytest.mark.parametrize("button,name,size", [
    ("#download-image", "seed0-class0.png", (28, 28)),
    ("#download-grid", "seed0-grid16-class0.png", (8 * 30 + 2, 2 * 30 + 2)),
    ("#download-between", "seed0-to-1-t0.5-class0.png", (28, 28)),
    ("#download-strip", "seed0-to-1-row8-class0.png", (8 * 30 + 2, 32)),
])
def test_a_download_arrives_as_a_png_of_the_right_size(page, button, name, size):
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    assert download.failure() is None and download.suggested_filename == name
    with Image.open(download.path()) as image:
        assert (image.format, image.size, image.mode) == ("PNG", size, "L")


@pytest.mark.parametrize("field,bad,fixed,message,image", [
    ("#class", "12", "4", "unknown class '12': this model has classes 0 to 9", SAMPLES),
    ("#batch", "100000", "4", "batch must be a whole number from 1 to 64 (images at a time), got '100000'", SAMPLES),
    ("#seed", "abc", "5", "seed must be a whole number from 0 to 2^63 - 1, got 'abc'", SAMPLES),
    ("#seed-b", "1.5", "2", "seed_b must be a whole number", STRIP),
])
def test_bad_input_shows_a_message_and_the_server_stays_up(page, field, bad, fixed, message, image):
    before = shown(page, image)
    panel = "#interp-error" if image == STRIP else "#samples-error"
    commit(page, field, bad)
    page.wait_for_function("([s, m]) => document.querySelector(s).textContent.includes(m)", arg=[panel, message])
    assert page.is_visible(panel) and shown(page, image) == before  # the message shows; the last good images stay
    commit(page, field, fixed)  # the next valid request is answered: new images, no message
    changed(page, image, before)
    page.wait_for_function("(s) => document.querySelector(s).textContent === ''", arg=panel)
