"""The service's page in a real browser: Debian's chromium driven by its chromedriver, on the
service served in this process with in-process runners (`serving.InProcessServer`)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import STAFF_TOKEN, TOY, InProcessServer, make_roster

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# What a student controls on the page: the file name and what the code prints.
HOSTILE_NAME = "<img src=x onerror=window.pwned=1><script>window.pwned=2.py"  # browsers encode '"'
HOSTILE_PRINT = "</pre><script>window.pwned=3</script><b>bold</b>"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver (Debian: chromium-driver)")
        pytest.skip("chromium or chromedriver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    # Selenium Manager would download a driver: the Service names Debian's.
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def find(driver: webdriver.Chrome, element_id: str, timeout: float = 30) -> WebElement:
    """The element, once the page that has it is loaded (a click returns before that)."""
    wait = WebDriverWait(driver, timeout)
    found: WebElement = wait.until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )
    return found


def sign_in(driver: webdriver.Chrome, url: str, token: str) -> None:
    driver.get(url + "/")
    find(driver, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    assert find(driver, "who")


def wait_for_verdict(driver: webdriver.Chrome, timeout: float = 90) -> str:
    """The page refreshes itself (no script) until the verdict is in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements(By.ID, "verdict")
        if found:
            return str(found[0].text)
        time.sleep(0.3)
    pytest.fail(f"no verdict after {timeout} s: {driver.page_source[:2000]}")


@pytest.mark.slow
def test_student_and_staff_use_the_page(tmp_path: Path, browser: webdriver.Chrome) -> None:
    tokens = make_roster(tmp_path)
    server = InProcessServer(tmp_path, tokens, workers=1).start()
    try:
        # A wrong token is refused on the page itself.
        browser.get(server.url + "/")
        find(browser, "token").send_keys("wrong-token-0123456789")
        browser.find_element(By.ID, "sign-in").click()
        assert "Unknown token" in find(browser, "error").text

        sign_in(browser, server.url, tokens["alice"])
        assert find(browser, "who").text == "alice"
        cookie = browser.get_cookie("grader_token")
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly

        # Another site's form that signs the visitor in as bob (to collect her uploads) is
        # refused: she is still alice afterwards.
        evil = tmp_path / "evil.html"
        evil.write_text(
            f'<form id="f" method="post" action="{server.url}/login">'
            f'<input name="token" value="{tokens["bob"]}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        )
        browser.get(evil.as_uri())
        assert "did not come from this site" in find(browser, "error").text
        browser.get(server.url + "/")
        assert find(browser, "who").text == "alice"

        upload = tmp_path / "upload"
        upload.mkdir()
        hostile = upload / HOSTILE_NAME
        body = (TOY / "submissions" / "correct.py").read_text()
        hostile.write_text(f"print({HOSTILE_PRINT!r})\n" + body)
        Select(browser.find_element(By.ID, "problem")).select_by_value("vector_stats")
        browser.find_element(By.ID, "file").send_keys(str(hostile))
        browser.find_element(By.ID, "submit").click()

        # The submission's page: the state first (queued with a position, or running).
        assert find(browser, "state").text in {"queued", "running", "done"}
        verdict = wait_for_verdict(browser)
        assert "8/8 points" in verdict and "vector_stats" in verdict
        assert find(browser, "score").text == "8/8 points"
        assert "Your code printed" in verdict and HOSTILE_PRINT in verdict
        # Inert: shown as text, never run or parsed as markup.
        assert browser.find_element(By.ID, "file").text == HOSTILE_NAME
        assert browser.execute_script("return window.pwned") is None
        assert not browser.find_elements(By.CSS_SELECTOR, "#verdict b, img, script")

        browser.find_element(By.LINK_TEXT, "All your submissions").click()
        history = find(browser, "history").text
        assert HOSTILE_NAME in history and "done" in history and "8/8" in history
        assert browser.execute_script("return window.pwned") is None

        # A non-Python file is refused on the page, saying why.
        text_file = upload / "notes.txt"
        text_file.write_text("hello")
        browser.find_element(By.ID, "file").send_keys(str(text_file))
        browser.find_element(By.ID, "submit").click()
        assert ".py" in find(browser, "error").text

        browser.find_element(By.ID, "sign-out").click()
        assert find(browser, "token")

        # Staff: the batch page over everyone's latest submissions.
        sign_in(browser, server.url, STAFF_TOKEN)
        assert find(browser, "who").text == "staff"
        browser.find_element(By.LINK_TEXT, "batch page").click()
        assert find(browser, "students").text == "1"
        assert find(browser, "full-marks").text == "1"
        browser.find_element(By.LINK_TEXT, "alice").click()  # the student's page
        WebDriverWait(browser, 30).until(lambda d: "8/8" in d.page_source)
        assert "alice" in browser.title and browser.execute_script("return window.pwned") is None
    finally:
        server.kill()
