"""Drive the running app in Debian's Chromium and save screenshots (README image, manual checks).

    python scripts/screenshot.py http://127.0.0.1:7860/ docs/screenshot.png

Writes the Compare tab after a finished comparison at desktop size (the README image), the Scaling
tab beside it (-scaling.png), and the Compare tab at a phone's size (-phone.png, full page).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


DESKTOP = {"width": 1400, "height": 1500}
PHONE = {"width": 390, "height": 844}


def compared(browser, url: str, viewport: dict):
    """A page at ``viewport`` after one finished comparison of the Maia prompt."""
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.get_by_text("The Maia story").first.click()
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('done')", timeout=60_000)
    return page


def main(url: str, out_png: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = compared(browser, url, DESKTOP)
        page.screenshot(path=out_png, full_page=False)
        page.get_by_role("tab", name="Scaling").click()
        page.wait_for_selector("#scaling-plot .main-svg", timeout=30_000)
        page.screenshot(path=out_png.replace(".png", "-scaling.png"), full_page=False)
        compared(browser, url, PHONE).screenshot(path=out_png.replace(".png", "-phone.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
