"""The playground page in a real browser: headless Chromium (Debian's package) driven by Selenium.

Skipped, saying why, where Chromium or its driver is missing; `.ci/run` installs both when it can.
A screenshot of the page is saved (in the test's folder, and in $MOZART_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

import db
from tests.test_playground import open_playground

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium is not installed here: apt-get install chromium chromium-driver "
           "(.ci/run does this when it can)")
WAIT_S = 60


def _browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--mute-audio"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(DRIVER), options=options)  # no driver download: Debian's driver


def _use_the_page(url: str, screenshots: list[Path]) -> dict:
    """What a person does: compose (with a video) with the popup's help, wait, rate 👍, ask for a variation,
    then the score (🎼), then play it in the voice channel (▶️)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        wait = WebDriverWait(browser, WAIT_S)
        browser.get(url)
        box = wait.until(EC.element_to_be_clickable((By.ID, "input")))
        box.send_keys("/compose style:zelda-b")
        # the popup lists the bot's own style suggestions; pick zelda-bach from it
        choice = wait.until(EC.visibility_of_element_located(
            (By.XPATH, "//ul[@id='suggestions']/li[span[@class='label' and text()='zelda-bach']]")))
        choice.click()
        wait.until(lambda b: box.get_attribute("value") == "/compose style:zelda-bach ")
        box.send_keys("bars:4 seed:5 video:true")
        # the popup offers True for the value already typed: Enter sends the command rather than re-typing it
        wait.until(EC.visibility_of_element_located(
            (By.XPATH, "//ul[@id='suggestions']/li[span[@class='label' and text()='True']]")))
        box.send_keys(Keys.ENTER)
        wait.until(lambda b: box.get_attribute("value") == "")
        wait.until(EC.presence_of_element_located((By.XPATH, "//article[.//b[text()='/compose']]")))
        piece = wait.until(EC.presence_of_element_located(
            (By.XPATH, "//article[.//audio and .//button[@data-emoji='👍']]")))
        piece_id = piece.get_attribute("data-message-id")
        title = piece.find_element(By.CSS_SELECTOR, ".embed-title").text
        audio = piece.find_element(By.TAG_NAME, "audio")
        duration = wait.until(lambda b: b.execute_script(
            "const a = arguments[0]; return a.readyState >= 1 && a.duration > 0 ? a.duration : null;", audio))
        video = piece.find_element(By.TAG_NAME, "video")  # the piano roll scrolling with the music
        video_duration = wait.until(lambda b: b.execute_script(
            "const v = arguments[0]; return v.readyState >= 2 && v.videoWidth > 0 ? v.duration : null;", video))
        roll = piece.find_element(By.CSS_SELECTOR, ".embed-image img")
        wait.until(lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", roll))

        piece.find_element(By.CSS_SELECTOR, "button.reaction[data-emoji='👍']").click()
        wait.until(lambda b: b.find_elements(
            By.CSS_SELECTOR, f"article[data-message-id='{piece_id}'] button.reaction.mine[data-emoji='👍']"))
        browser.find_element(By.CSS_SELECTOR, f"article[data-message-id='{piece_id}'] "
                                              f"button[data-custom-id='mozart:variation']").click()
        wait.until(lambda b: len(b.find_elements(By.XPATH, "//article[.//audio]")) >= 2)
        browser.find_element(By.CSS_SELECTOR, f"article[data-message-id='{piece_id}'] "
                                              f"button[data-custom-id='mozart:score']").click()
        score = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "img.picture[data-file$='.score.png']")))
        score_width = wait.until(lambda b: b.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", score))  # the browser decoded the page
        musicxml = browser.find_elements(By.CSS_SELECTOR, "[data-file$='.musicxml'] a[download]")
        # ▶️: the bot joins the voice channel the person sits in and plays the piece; the page gets what the
        # fake Discord received (decrypted, decoded) and plays it
        browser.find_element(By.CSS_SELECTOR, f"article[data-message-id='{piece_id}'] "
                                              f"button[data-custom-id='mozart:play']").click()
        heard = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#voice-captures audio")))
        voice_duration = wait.until(lambda b: b.execute_script(
            "const a = arguments[0]; return a.readyState >= 1 && a.duration > 0 ? a.duration : null;", heard))
        voice_members = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#voice-members li")]
        for path in screenshots:  # the whole tour on one page: composed, rated, varied, engraved, heard
            path.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(path))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        return {"piece_id": int(piece_id), "title": title, "duration": duration, "video_duration": video_duration,
                "errors": errors, "score_width": score_width, "musicxml_links": len(musicxml),
                "voice_duration": voice_duration, "voice_members": voice_members,
                "articles": len(browser.find_elements(By.CSS_SELECTOR, "article"))}
    finally:
        browser.quit()


async def test_a_person_composes_rates_and_varies_in_the_browser(tmp_path, tiny_checkpoint):
    screenshots = [tmp_path / "playground.png"]
    if os.environ.get("MOZART_SCREENSHOT_DIR"):
        screenshots.append(Path(os.environ["MOZART_SCREENSHOT_DIR"]) / "playground.png")
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        seen = await asyncio.to_thread(_use_the_page, url, screenshots)  # the page's server keeps running here

        assert "zelda-bach" in seen["title"] and seen["duration"] > 1
        assert abs(seen["video_duration"] - seen["duration"]) < 0.1  # the browser decodes the video, as long as the audio
        assert not seen["errors"], seen["errors"]
        piece = await db.piece_by_message(playground.bot.db, seen["piece_id"])
        assert piece.style == "zelda-bach" and piece.seed == 5
        async with playground.bot.db() as session:
            ratings = (await session.execute(select(db.Rating).where(db.Rating.piece_id == piece.id))).scalars().all()
            children = (await session.execute(select(db.PieceRow).where(db.PieceRow.parent_id == piece.id))
                        ).scalars().all()
        assert [(r.user_id, r.value) for r in ratings] == [(playground.fake.user_id, 1)]
        assert [c.kind for c in children] == ["variation"]
        assert seen["score_width"] >= 800 and seen["musicxml_links"] == 1  # 🎼: the engraved page and the MusicXML
        # ▶️: the page received the voice channel's audio, as long as the piece (the MP3 adds its padding)
        assert abs(seen["voice_duration"] - seen["duration"]) < 0.2, (seen["voice_duration"], seen["duration"])
        assert playground.fake.voice.captures[0].e2ee_frames > 0 and "you" in seen["voice_members"]
    assert screenshots[0].stat().st_size > 10_000
