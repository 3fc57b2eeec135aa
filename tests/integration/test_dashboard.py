"""The dashboard in a real browser (Debian chromium, headless, through chromedriver):
it loads during a paced run, its numbers advance, and its Stop button stops the run
as SIGTERM would. A screenshot is kept as a test artifact (build/test-artifacts/)."""

import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from ..conftest import ROOT, wait_for
from .test_http import _start

ARTIFACTS = ROOT / "build" / "test-artifacts"


@pytest.fixture
def browser():
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("needs Debian chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1200,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def _number(text: str) -> float:
    """'1.5 MiB of 4.0 MiB' -> bytes of the first size."""
    value, unit = re.match(r"([0-9.]+) (B|KiB|MiB|GiB)", text).groups()
    return float(value) * 1024 ** ["B", "KiB", "MiB", "GiB"].index(unit)


def _bytes_at(dst: Path) -> int:
    """What is written at DST so far, temporaries included."""
    return sum(os.lstat(os.path.join(d, n)).st_size for d, _, names in os.walk(dst)
               for n in names)


def test_the_dashboard_follows_the_run_and_stops_it(pair, browser):
    from selenium.webdriver.common.by import By
    proc, url = _start(pair)
    try:
        browser.get(url)
        text = lambda: browser.find_element(By.ID, "bytes").text
        wait_for(lambda: " of 8.0 MiB" in text(), timeout=30)
        first = _number(text())
        wait_for(lambda: _number(text()) > first, timeout=30)
        assert browser.find_element(By.ID, "phase").text == "copying"
        assert browser.find_element(By.ID, "route").text == f"{pair.src} → {pair.dst}"
        assert browser.find_element(By.ID, "cap").text == "1.0 MiB/s"
        wait_for(lambda: "big.bin" in browser.find_element(By.ID, "current").text)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        # Pause: the bytes on the page, and on the wire, stop moving
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: browser.find_element(By.ID, "phase").text == "paused")
        time.sleep(1.5)                 # blocks in flight when it came are finished
        held = _number(text())
        on_disk = _bytes_at(pair.dst)
        time.sleep(2)
        assert _number(text()) == held and _bytes_at(pair.dst) == on_disk
        assert browser.find_element(By.ID, "pause").text == "Resume"
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: _number(text()) > held, timeout=30)
        browser.find_element(By.ID, "stop").click()
        browser.switch_to.alert.accept()
        assert proc.wait(60) == 143
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)
    conn = sqlite3.connect(pair.db)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    conn.close()
