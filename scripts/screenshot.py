"""Drive the running app in Debian's Chromium and save screenshots (README image, manual checks).

    python scripts/screenshot.py http://127.0.0.1:7860/ docs/screenshot.png

Writes the Compare tab at 1280 x 800 after a finished comparison (the README image), the Scaling tab
(-scaling.png), the Review tab after a vote (-review.png), and at a phone's size the Compare tab
(-phone.png, full page) and the Scaling tab (-scaling-phone.png, full page).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def compared(browser, url: str, viewport: dict):
    """A page at ``viewport`` after one finished comparison of the Maia prompt."""
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.get_by_text("The Maia story").first.click()
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('done') && "
                           "document.querySelector('#right-stats').innerText.includes('done')", timeout=60_000)
    return page


def main(url: str, out_png: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = compared(browser, url, DESKTOP)
        page.screenshot(path=out_png, full_page=False)
        page.locator("#vote").get_by_label("Left is better").check()
        page.locator("#vote-btn").click()
        page.wait_for_function("document.querySelector('#reveal').innerText.includes('Vote recorded')")
        _tab(page, "Scaling", "#scaling-plot .main-svg", out_png.replace(".png", "-scaling.png"))
        _tab(page, "Review", "#history [role=gridcell]", out_png.replace(".png", "-review.png"))
        phone = compared(browser, url, PHONE)
        phone.screenshot(path=out_png.replace(".png", "-phone.png"), full_page=True)
        _tab(phone, "Scaling", "#scaling-plot .main-svg", out_png.replace(".png", "-scaling-phone.png"), True)
        browser.close()


def _tab(page, name: str, ready: str, path: str, full_page: bool = False) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_selector(ready, timeout=30_000)
    page.wait_for_timeout(1500)  # the phone layout is applied within 250 ms of drawing
    page.screenshot(path=path, full_page=full_page)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
