"""Drives voxd's web page in headless Chromium (Selenium), as a person would.

Usage: page.py BASE_URL SCREENSHOTS_DIR IMAGE_FILE [QUESTION_WAV SECONDS]

Loads the page, reads the engine list, asks a question in extractive mode
and follows the answer's citation into the note viewer, captions IMAGE_FILE,
searches the notes, and (with QUESTION_WAV, fed to Chromium as its fake
microphone) holds the push-to-talk button for SECONDS. Writes a screenshot
of each view at desktop and phone width into SCREENSHOTS_DIR, and prints
one JSON line: what the page showed, and every origin the page requested.
"""

import json
import shutil
import sys
import time
from urllib.parse import urlsplit

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    sys.exit(f"selenium is not installed in the test Python ({e}): run `bash scripts/bootstrap.sh test`")

base, shots, image = sys.argv[1], sys.argv[2], sys.argv[3]
question_wav = sys.argv[4] if len(sys.argv) > 4 else None
hold_secs = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
scale = float(__import__("os").environ.get("VOXD_TEST_TIME_SCALE", "1"))

browser = shutil.which("chromium")
driver_bin = shutil.which("chromedriver")
if not browser or not driver_bin:
    sys.exit("chromium or chromedriver is missing: run `bash scripts/bootstrap.sh test`")

options = webdriver.ChromeOptions()
options.binary_location = browser
for arg in [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--lang=en-US",
]:
    options.add_argument(arg)
if question_wav:
    options.add_argument(f"--use-file-for-fake-audio-capture={question_wav}%noloop")
options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_bin))
wait = WebDriverWait(driver, 120 * scale)
seen = {}


def shot(name, whole=True):
    """A screenshot of the view; `whole`: the full page, not just the window."""
    size = driver.get_window_size()
    if whole:
        chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], max(size["height"], height + chrome))
        time.sleep(0.2)
    driver.save_screenshot(f"{shots}/{name}.png")
    driver.set_window_size(size["width"], size["height"])


def tab(name):
    driver.find_element(By.ID, f"tab-{name}").click()
    wait.until(lambda d: d.find_element(By.ID, f"view-{name}").is_displayed())


def text_of(css):
    """The text of each element `css` selects, read in one step: the page
    re-renders its lists as events come, which would make elements found
    one moment stale the next."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())", css
    )


try:
    driver.get(base + "/")
    wait.until(lambda d: d.find_element(By.ID, "live").text == "live")

    # The keyboard: arrow keys move between the tabs.
    driver.find_element(By.ID, "tab-chat").send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: d.find_element(By.ID, "view-status").is_displayed())
    seen["keyboard_tab"] = driver.switch_to.active_element.get_attribute("id")

    # Status: the engines as the page lists them, once their rows are in.
    tab("status")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#engines tbody tr"))
    time.sleep(0.5)
    seen["engines"] = [
        {"name": name, "state": state}
        for name, state in zip(text_of("#engines tbody th"), text_of("#engines tbody .pill"))
    ]
    seen["daemon"] = driver.find_element(By.ID, "daemon-facts").text
    seen["budget"] = driver.find_element(By.ID, "budget-legend").text

    # Chat: a question, its streamed answer, and its citation opened.
    tab("chat")
    Select(driver.find_element(By.ID, "mode")).select_by_value("extractive")
    driver.find_element(By.ID, "session").send_keys("kitchen")
    box = driver.find_element(By.ID, "question")
    box.send_keys("What is the wifi password?")
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".answer[data-done]"))
    answer = driver.find_element(By.CSS_SELECTOR, ".answer[data-done]")
    seen["answer"] = answer.find_element(By.CSS_SELECTOR, ".text").text
    seen["answer_meta"] = answer.find_element(By.CSS_SELECTOR, ".meta").text
    links = answer.find_elements(By.CSS_SELECTOR, "a.cite")
    seen["citation_links"] = [a.text for a in links]
    shot("chat-desktop", whole=False)
    links[-1].click()
    wait.until(lambda d: d.find_element(By.ID, "viewer").get_attribute("open") is not None)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer-lines li.cited"))
    seen["viewer_title"] = driver.find_element(By.ID, "viewer-title").text
    seen["cited_lines"] = text_of("#viewer-lines li.cited")
    shot("viewer-desktop", whole=False)
    driver.find_element(By.ID, "viewer").send_keys(Keys.ESCAPE)
    wait.until(lambda d: d.find_element(By.ID, "viewer").get_attribute("open") is None)

    # The session: its stored turn shown, then forgotten.
    driver.find_element(By.ID, "history-button").click()
    wait.until(lambda d: [t for t in text_of("#conversation .hint") if t.startswith("Session")])
    seen["history"] = [t for t in text_of("#conversation .hint") if t.startswith("Session")]
    driver.find_element(By.ID, "forget-button").click()
    wait.until(lambda d: d.find_element(By.ID, "toast").text.startswith("Forgot"))
    seen["forgot"] = driver.find_element(By.ID, "toast").text
    driver.find_element(By.ID, "session").clear()

    # Images: one uploaded and captioned.
    tab("images")
    driver.find_element(By.ID, "image-file").send_keys(image)
    wait.until(
        lambda d: [t for t in text_of("#captioned-now .caption") if t and t != "Captioning…"]
    )
    seen["uploaded_caption"] = text_of("#captioned-now .caption")[0]
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#images .picture"))
    seen["listed_captions"] = text_of("#images .picture .caption")
    seen["image_folders"] = driver.find_element(By.ID, "image-folders").text
    wait.until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#images img')].filter(i => i.naturalWidth > 0).length"
        )
    )
    seen["listed_thumbnails"] = driver.execute_script(
        "return [...document.querySelectorAll('#images img')].map(i => [i.naturalWidth, i.naturalHeight])"
    )
    shot("images-desktop")

    # Notes: a search, and the index's figures.
    tab("notes")
    search = driver.find_element(By.ID, "search")
    search.send_keys("front door code")
    search.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits .hit"))
    seen["hits"] = text_of("#hits .hit .snippet")
    seen["notes"] = driver.find_element(By.ID, "notes-facts").text
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#files tbody tr th a"))
    seen["files"] = text_of("#files tbody th")
    seen["skipped"] = text_of("#skipped li")
    shot("notes-desktop")

    tab("models")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#models tbody tr th"))
    seen["roles"] = text_of("#roles tbody th")
    shot("models-desktop")

    # Push-to-talk: the fake microphone says the question while the
    # button is held (Space on the focused button, as a keyboard user).
    if question_wav:
        tab("chat")
        before = len(driver.find_elements(By.CSS_SELECTOR, ".answer[data-done]"))
        talk = driver.find_element(By.ID, "talk-button")
        ActionChains(driver).click_and_hold(talk).perform()
        wait.until(lambda d: "recording" in talk.get_attribute("class"))
        time.sleep(hold_secs)
        ActionChains(driver).release(talk).perform()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".answer[data-done]")) > before)
        seen["talk_question"] = text_of(".question")[-1]
        seen["talk_answer"] = driver.find_elements(By.CSS_SELECTOR, ".answer[data-done] .text")[-1].text

    tab("status")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timings .turn"))
    seen["turns"] = text_of("#timings .turn-label")
    shot("status-desktop")

    # Phone width: each view again.
    driver.set_window_size(390, 844)
    time.sleep(0.5)
    seen["phone_overflow"] = []
    for name in ["status", "notes", "images", "models", "chat"]:
        tab(name)
        time.sleep(0.3)
        if driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth"):
            seen["phone_overflow"].append(name)
        shot(f"{name}-phone", whole=name != "chat")

    # Every request the page made, from Chromium's own log.
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    seen["origins"] = sorted(
        {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls if not u.startswith(("data:", "blob:"))}
    )
    seen["speech_requested"] = any(urlsplit(u).path == "/v1/audio/speech" for u in urls)
    seen["console_errors"] = [
        e["message"][:300] for e in driver.get_log("browser") if e["level"] == "SEVERE"
    ]
except Exception:
    driver.save_screenshot(f"{shots}/failure.png")
    print(json.dumps(seen), file=sys.stderr)
    raise
finally:
    driver.quit()

print(json.dumps(seen))
