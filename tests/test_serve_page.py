"""The web page of `dfdetect serve` end to end in headless Chromium (Debian's package, driven by Selenium):
upload a real clip, wait for the verdict, and see the verdict, the plot, the heat maps and the video.
Screenshots (desktop and phone width) are saved under tests/artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, ServerProcess

pytestmark = pytest.mark.slow
ARTIFACTS = REPO / "tests" / "artifacts"


def _chromium() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no chromium/chromedriver binary (Debian: apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1800"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("page"), "--frames", "6").start()
    yield srv
    srv.stop()


def test_drop_a_clip_and_see_the_verdict_the_plot_and_the_heat_maps(browser, server, ffpp_clips):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = ffpp_clips["fake"][0]
    browser.get(server.url + "/")
    assert "dfdetect" in browser.title
    browser.find_element(By.ID, "file").send_keys(str(clip))
    WebDriverWait(browser, 300).until(lambda b: b.find_element(By.ID, "result").is_displayed()
                                      or b.find_element(By.ID, "error").is_displayed())
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict in ("FAKE", "REAL")
    assert clip.name in browser.find_element(By.ID, "verdict-detail").text
    assert "p(fake) = 0." in browser.find_element(By.ID, "verdict-detail").text
    # the plot: one line per person, over time, with the threshold
    assert browser.find_elements(By.CSS_SELECTOR, "#plot svg polyline.series")
    assert browser.find_elements(By.CSS_SELECTOR, "#plot svg line.threshold")
    # the faces and their heat maps, loaded (not broken images)
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(
        "const imgs = [...document.querySelectorAll('#faces img')];"
        "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#faces img.heatmap")) >= 1
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(
        "const v = document.querySelector('#annotated video'); return v && v.readyState >= 1 && v.duration > 3;"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serve_page.png"))
    browser.set_window_size(390, 1800)  # a phone: nothing wider than the screen
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    assert browser.save_screenshot(str(ARTIFACTS / "serve_page_phone.png"))
    assert Path(ARTIFACTS / "serve_page.png").stat().st_size > 10_000


def test_a_bad_file_shows_one_clear_message(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = tmp_path / "holiday.mp4"
    text.write_text("not a video at all\n" * 20)
    browser.set_window_size(1200, 1800)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(text))
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "error").is_displayed())
    message = browser.find_element(By.ID, "error").text
    assert "holiday.mp4" in message and "text" in message
    assert not browser.find_element(By.ID, "result").is_displayed()
