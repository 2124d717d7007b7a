"""The demo page (serve_apps/static/index.html) in headless Chromium against the real app
(issue 24): upload a real photo through the file input, wait for the captions, ask a question,
wait for the answers. The app runs the default config (no jobs token), so this module also
checks that /v1/jobs is off then.

Needs Debian's chromium and chromedriver and selenium; skipped where they are missing."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
# The screenshot lands among the ignored results; P2L3D_DEMO_SCREENSHOT puts it elsewhere, and
# P2L3D_DEMO_MODEL serves a trained model instead of the test's untrained one (how the report's
# picture, benchmarks/reports/2026-12-06-demo-page.png, was taken).
SCREENSHOT = Path(os.environ.get("P2L3D_DEMO_SCREENSHOT",
                                 REPO / "benchmarks" / "results" / "demo-page.png"))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 60
QUESTION = "Is the left knee bent?"


@pytest.fixture(scope="module")
def app(start_app) -> dict:
    if os.environ.get("P2L3D_DEMO_MODEL"):
        return start_app(model=str(Path(os.environ["P2L3D_DEMO_MODEL"]).resolve()))
    return start_app()  # config.yaml's arguments: no jobs token


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install selenium)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and not shutil.which(Path(path).name):
            pytest.skip(f"{path} not found: the demo-page test needs Debian's chromium and "
                        "chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-proxy-server"):
        options.add_argument(arg)
    service = webdriver.ChromeService(
        executable_path=CHROMEDRIVER if Path(CHROMEDRIVER).exists()
        else shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def _wait_for(driver, css: str) -> str:
    """The text of the first ``css`` element once it has some, or the page's error status;
    whichever comes first within WAIT_S."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d):
        found = [e.get_attribute("textContent").strip()
                 for e in d.find_elements(By.CSS_SELECTOR, css)]
        found = [t for t in found if t]
        if found:
            return ("ok", found)
        errors = d.find_elements(By.CSS_SELECTOR, "#status.error")
        if errors and errors[0].text.strip():
            return ("error", errors[0].text)
        return False

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(done)


def test_jobs_are_off_without_a_token(http, app):
    r = http.post(f"{app['url']}/v1/jobs", headers={"authorization": "Bearer anything"},
                  json={"input": "s3://b/in", "output": "s3://b/out"})
    assert r.status_code == 404
    assert "batch jobs are off" in r.json()["error"] and "token" in r.json()["error"]
    r = http.get(f"{app['url']}/v1/jobs/raysubmit_x")
    assert r.status_code == 404 and "off" in r.json()["error"]


def test_upload_a_photo_then_ask_about_it(http, app, browser, shared_file):
    from selenium.webdriver.common.by import By

    photo = shared_file("images/camera.png")
    browser.get(app["url"] + "/")
    assert "Pose2Lang3D" in browser.title
    # the question families are listed from /v1/questions (in a closed <details>)
    outcome, families = _wait_for(browser, "#families li")
    assert outcome == "ok" and len(families) >= 3
    browser.find_element(By.ID, "file").send_keys(str(photo))
    outcome, found = _wait_for(browser, "#people .caption")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))  # what a user sees, captions or the error
    assert outcome == "ok", f"the page shows an error: {found}"
    # the captions on the page are the API's for the same photo
    api = http.post(f"{app['url']}/v1/caption",
                    json={"image_base64": base64.b64encode(photo.read_bytes()).decode()})
    expected = [p["caption"] for p in api.json()["people"]]
    assert expected and found == expected
    assert all(c in browser.find_element(By.ID, "people").text for c in expected)
    picture = browser.find_element(By.CSS_SELECTOR, "#picture img")
    assert picture.get_attribute("src").startswith("data:image/png;base64,")
    assert "person" in browser.find_element(By.ID, "status").text

    question = browser.find_element(By.ID, "question")
    assert question.is_enabled()
    question.send_keys(QUESTION)
    browser.find_element(By.ID, "askButton").click()
    outcome, sentences = _wait_for(browser, "#people .answer b")
    assert outcome == "ok", f"the page shows an error: {sentences}"
    answered = http.post(f"{app['url']}/v1/answer",
                         json={"image_base64": base64.b64encode(photo.read_bytes()).decode(),
                               "question": QUESTION}).json()
    assert sentences == [p["answers"][0]["sentence"] for p in answered["people"]]
    assert "Answered in" in browser.find_element(By.ID, "status").text
    browser.save_screenshot(str(SCREENSHOT))
