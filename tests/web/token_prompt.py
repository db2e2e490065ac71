"""The web page against a voxd that needs its token, in headless Chromium.

Usage: token_prompt.py BASE_URL TOKEN

Loads the page without a token: the page itself loads, the API answers
401 and the page asks for the token; enters TOKEN; the page reloads and
shows the daemon live. Prints one JSON line of what it saw.
"""

import json
import os
import shutil
import sys

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    sys.exit(f"selenium is not installed in the test Python ({e}): run `bash scripts/bootstrap.sh test`")

base, token = sys.argv[1], sys.argv[2]
scale = float(os.environ.get("VOXD_TEST_TIME_SCALE", "1"))
browser, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
if not browser or not driver_bin:
    sys.exit("chromium or chromedriver is missing: run `bash scripts/bootstrap.sh test`")
options = webdriver.ChromeOptions()
options.binary_location = browser
for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update"]:
    options.add_argument(arg)
driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_bin))
wait = WebDriverWait(driver, 60 * scale)
seen = {}
try:
    driver.get(base + "/")
    dialog = driver.find_element(By.ID, "token-dialog")
    wait.until(lambda d: dialog.get_attribute("open") is not None)
    seen["asked"] = True
    seen["live_before"] = driver.find_element(By.ID, "live").text
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, '#token-form button[value="save"]').click()
    wait.until(lambda d: d.find_element(By.ID, "live").text == "live")
    driver.find_element(By.ID, "tab-status").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#engines tbody tr"))
    # Read in one step: the rows are re-rendered as events come.
    seen["engines"] = driver.execute_script(
        "return [...document.querySelectorAll('#engines tbody th')].map(e => e.innerText.trim())"
    )
    seen["asked_again"] = driver.find_element(By.ID, "token-dialog").get_attribute("open") is not None
finally:
    driver.quit()
print(json.dumps(seen))
