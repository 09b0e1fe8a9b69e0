"""The web page in a real browser: headless Chromium (Debian's, driven by selenium) against
`python -m mixnet.serve` on a free loopback port: upload a vocal, wait for the mix, switch A/B,
download the mix, save a screenshot.

Needs the system's Chromium and its driver: `apt-get install -y chromium chromium-driver`
(`.ci/run` installs them). The screenshot goes to $MIXNET_SCREENSHOT_DIR, else the test's
temporary folder.
"""

import os
import shutil
import time

import numpy as np
import pytest
import soundfile as sf
from test_serve import SR, running_service

from mixnet import audio
from mixnet.data import synthetic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Chromium and its driver from the system's packages: "
           "`apt-get install -y chromium chromium-driver` (Debian/Ubuntu)")


@pytest.fixture
def browser(tmp_path):
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service

  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1200,900", "--autoplay-policy=no-user-gesture-required"):
    options.add_argument(arg)
  downloads = tmp_path / "downloads"
  downloads.mkdir()
  options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                            "download.prompt_for_download": False})
  driver = webdriver.Chrome(service=Service(DRIVER), options=options)
  driver.downloads = downloads
  try:
    yield driver
  finally:
    driver.quit()


def wait_for(condition, what, timeout=60):
  deadline = time.time() + timeout
  while time.time() < deadline:
    value = condition()
    if value:
      return value
    time.sleep(0.1)
  raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_page_mixes_plays_ab_and_downloads(browser, tmp_path):
  from selenium.webdriver.common.by import By

  take = tmp_path / "my take.wav"
  raw_tc = synthetic.synth_vocal(3.0, SR, seed=7)
  audio.save(take, raw_tc, SR)
  find = lambda element_id: browser.find_element(By.ID, element_id)
  with running_service() as url:
    browser.get(url + "/")
    wait_for(lambda: "DSP chain" in find("engine").text, "the engine badge")
    assert find("preset").get_attribute("value") == "default"
    find("preset").send_keys("warm")
    find("file").send_keys(str(take))
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")
             in ("mixed", "error"), "the mix")
    assert find("error").text == "", find("error").text
    assert "Mixed 3.0 s of audio" in find("status").text
    assert "(warm)" in find("mixed-facts").text

    body = browser.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-listening") == "mixed"
    find("play").click()
    assert find("play").text == "Pause"
    find("listen-raw").click()
    assert body.get_attribute("data-listening") == "raw"
    assert find("listen-raw").get_attribute("aria-pressed") == "true"
    assert find("listen-mixed").get_attribute("aria-pressed") == "false"
    find("listen-mixed").click()
    assert body.get_attribute("data-listening") == "mixed"
    # Loudness-matched A/B: the louder mix is turned down to the raw take's loudness.
    lufs = browser.execute_script("return [state.lufs.raw, state.lufs.mixed];")
    assert lufs[1] > lufs[0] + 3
    gains = lambda: browser.execute_script(
        "return [state.gains.raw.gain.value, state.gains.mixed.gain.value];")
    matched = 10 ** ((lufs[0] - lufs[1]) / 20)
    wait_for(lambda: np.allclose(gains(), [0, matched], atol=0.01), "the matched gains")
    find("match").click()
    wait_for(lambda: np.allclose(gains(), [0, 1], atol=0.01), "the unmatched gains")
    find("play").click()
    # The waveform canvases were drawn: some pixels are not blank.
    painted = browser.execute_script(
        "const c = document.getElementById('wave-mixed');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;")
    assert painted > 1000

    find("download").click()
    saved = browser.downloads / "my_take_mixed.wav"
    wait_for(saved.exists, f"the download {saved}")
    screenshot_dir = os.environ.get("MIXNET_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(screenshot_dir, exist_ok=True)
    assert browser.save_screenshot(os.path.join(screenshot_dir, "serve_page.png"))

  mixed_tc, sample_rate = sf.read(saved, dtype="float32", always_2d=True)
  assert sample_rate == SR and mixed_tc.shape == raw_tc.shape
  assert not np.allclose(mixed_tc, raw_tc, atol=1e-3)
