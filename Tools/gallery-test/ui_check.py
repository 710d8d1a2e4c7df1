"""Drives the gallery's web UI in headless Chromium (Selenium + Debian's chromedriver) and saves a
screenshot of each page. Run by the gallery's end-to-end test against a gallery that has run an SFT job,
a DPO job from its output, and a deployment of the SFT output.

Usage: ui_check.py BASE_URL CHROMEDRIVER SCREENSHOT_DIR SFT_JOB DPO_OUTPUT DEPLOYMENT EXPECTED_ANSWER
Prints one line per check; exits 1 at the first failure.
"""
import pathlib
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import Select, WebDriverWait

base, driver_path, shots, sft_job, dpo_output, deployment, expected = sys.argv[1:8]
shots = pathlib.Path(shots)
shots.mkdir(parents=True, exist_ok=True)
options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
    options.add_argument(flag)
browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
wait = WebDriverWait(browser, 30)


def check(name, condition, detail=""):
    print(f"{'ok' if condition else 'FAILED'}: {name}{' (' + detail + ')' if detail and not condition else ''}")
    if not condition:
        browser.save_screenshot(str(shots / f"failed-{name.replace(' ', '-')}.png"))
        browser.quit()
        sys.exit(1)


try:
    browser.get(base + "/")
    card = wait.until(until.presence_of_element_located((By.CSS_SELECTOR, ".model-card")))
    check("catalogue shows the model card", "SmolLM2-135M-Instruct" in card.text and "134.5M parameters" in card.text, card.text)
    browser.save_screenshot(str(shots / "catalogue.png"))

    browser.get(base + "/train")
    Select(browser.find_element(By.ID, "method")).select_by_value("dpo")
    datasets = Select(browser.find_element(By.ID, "dataset"))
    chat = next(o for o in datasets.options if "· chat ·" in o.text)
    datasets.select_by_value(chat.get_attribute("value"))
    browser.find_element(By.CSS_SELECTOR, "#train-form button").click()
    error = wait.until(lambda b: b.find_element(By.ID, "train-error").text or None)
    check("train form shows the validation error", "dpo trains on preference data" in error, error)
    check("the dataset field is marked", "invalid" in browser.find_element(By.ID, "dataset").get_attribute("class"))
    browser.save_screenshot(str(shots / "train-validation.png"))

    browser.get(base + "/jobs/" + sft_job)
    wait.until(until.presence_of_element_located((By.CSS_SELECTOR, "#curve polyline")))
    wait.until(lambda b: "done:" in b.find_element(By.ID, "log").text)
    check("job page shows its state", browser.find_element(By.ID, "state").text == "succeeded")
    points = browser.find_element(By.CSS_SELECTOR, "#curve polyline").get_attribute("points").split()
    check("job page draws the loss curve", len(points) == 2, str(points))
    browser.save_screenshot(str(shots / "job.png"))

    browser.get(base + "/outputs/" + dpo_output)
    boxes = browser.find_elements(By.CSS_SELECTOR, "#lineage svg rect")
    labels = browser.find_element(By.ID, "lineage").text
    check("lineage shows model, datasets, both jobs and both outputs", len(boxes) == 7 and "sft job" in labels and "dpo job" in labels, labels)
    browser.save_screenshot(str(shots / "lineage.png"))

    browser.get(base + "/playground")
    models = Select(browser.find_element(By.ID, "deployment"))
    adapter = next(o for o in models.options if o.get_attribute("value").startswith(deployment + "|o-"))
    models.select_by_value(adapter.get_attribute("value"))
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("What is the capital of France?")
    max_tokens = browser.find_element(By.ID, "max_tokens")
    max_tokens.clear()
    max_tokens.send_keys("12")
    browser.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    answer = wait.until(lambda b: (lambda t: t if t and t != "…" else None)(b.find_element(By.ID, "answer").text))
    check("playground answers like temper generate", answer == expected.strip(), repr(answer))
    browser.save_screenshot(str(shots / "playground.png"))
finally:
    browser.quit()
