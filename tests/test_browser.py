"""The app in a real browser: Debian's Chromium driven by Playwright (no browser download)."""

import os
import shutil

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
CHROMIUM = os.environ.get("COMPARER_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        page.goto(app_url)
        page.wait_for_selector("#compare-btn")
        yield page
        browser.close()


def _screenshot(page, tmp_path, name: str) -> None:
    """Saved where COMPARER_SCREENSHOT_DIR points (CI keeps them), else in the test's temp folder."""
    out = os.environ.get("COMPARER_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(out, exist_ok=True)
    page.screenshot(path=os.path.join(out, name))


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id} textarea').value")


def test_compare_fills_both_panes_with_stats_then_stop_halts_updates(page, tmp_path):
    page.locator("#prompt textarea").fill("Maia gets ready for her next adventure. She finds a toy boat and")
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('done') && "
                           "document.querySelector('#right-stats').innerText.includes('done')", timeout=60_000)
    assert _text(page, "left-text") and _text(page, "right-text")
    stats = page.locator("#left-stats").inner_text()
    assert "TTFT" in stats and "tok/s" in stats and "alone, shown on one clock" in stats

    page.get_by_text("Decoding settings").click()
    page.get_by_label("fixed length (min = max new tokens), for speed comparisons").check()
    page.locator("input[aria-label='number input for max new tokens']").fill("1024")
    page.locator("input[aria-label='number input for max new tokens']").press("Enter")
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('measuring alone') || "
                           "document.querySelector('#right-stats').innerText.includes('measuring alone')",
                           timeout=60_000)
    page.locator("#stop-btn").click()
    page.wait_for_timeout(1000)
    after_stop = (_text(page, "left-text"), _text(page, "right-text"))
    page.wait_for_timeout(1500)
    assert (_text(page, "left-text"), _text(page, "right-text")) == after_stop
    _screenshot(page, tmp_path, "compare.png")


def test_both_panes_grow_together_on_one_clock(page, tmp_path):
    """The fair race: one model is measured alone first (its strip says so), then both panes fill at
    the same time, each at its own model's pace."""
    page.get_by_label("fixed length (min = max new tokens), for speed comparisons").uncheck()
    page.locator("input[aria-label='number input for max new tokens']").fill("160")
    page.locator("input[aria-label='number input for max new tokens']").press("Enter")
    page.locator("#prompt textarea").fill("The lighthouse keeper climbed the stairs and")
    page.locator("#compare-btn").click()
    samples, saw_measuring = [], False
    for _ in range(400):
        strips = page.locator("#left-stats").inner_text() + page.locator("#right-stats").inner_text()
        saw_measuring |= "measuring alone" in strips
        samples.append((len(_text(page, "left-text")), len(_text(page, "right-text"))))
        if strips.count("done") == 2:
            break
        page.wait_for_timeout(50)
    final = samples[-1]
    both_partial = [s for s in samples if 0 < s[0] < final[0] and 0 < s[1] < final[1]]
    assert saw_measuring and final[0] > 0 and final[1] > 0
    assert len(both_partial) >= 2, samples  # both texts were growing at the same moments
    _screenshot(page, tmp_path, "race.png")


def test_scaling_plot_renders_the_stored_h200_runs(page, tmp_path):
    page.get_by_role("tab", name="Scaling").click()
    page.wait_for_selector("#scaling-plot .main-svg", timeout=30_000)
    assert "H200" in page.locator("#scaling-plot").inner_text()
    _screenshot(page, tmp_path, "scaling.png")
    page.get_by_role("tab", name="Compare").click()


def _wait_done(page) -> None:
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('done') && "
                           "document.querySelector('#right-stats').innerText.includes('done')", timeout=60_000)


def test_a_vote_belongs_to_the_comparison_on_screen_and_blind_buttons_name_a_and_b(page, app_url, tmp_path):
    """Compare, vote with tags and a note, compare again (blind): the form is empty and its buttons read
    'A is better' / 'B is better'; the blind comparison re-opened before its vote names no model; its
    stored vote carries only its own verdict."""
    from gradio_client import Client

    page.goto(app_url)
    page.wait_for_selector("#compare-btn")
    page.locator("#prompt textarea").fill("Once upon a time, a little fox")
    page.locator("#compare-btn").click()
    _wait_done(page)
    page.locator("#vote").get_by_label("Right is better").check()
    page.locator("#tags").get_by_label("repetition").check()
    page.locator("#tags").get_by_label("off-topic").check()
    page.get_by_label("note (optional)").fill("Right is less repetitive")
    page.locator("#vote-btn").click()
    page.wait_for_function("document.querySelector('#reveal').innerText.includes('Vote recorded')", timeout=20_000)

    page.locator("#blind").get_by_role("checkbox").check()
    page.locator("#compare-btn").click()
    _wait_done(page)
    assert page.locator("#vote").get_by_label("A is better").count() == 1
    assert page.locator("#vote").get_by_label("Left is better").count() == 0
    assert page.evaluate("[...document.querySelectorAll('#vote input')].filter(i => i.checked).length") == 0
    assert page.evaluate("[...document.querySelectorAll('#tags input')].filter(i => i.checked).length") == 0
    assert page.get_by_label("note (optional)").input_value() == ""
    assert "Vote recorded" not in page.locator("#reveal").inner_text()
    _screenshot(page, tmp_path, "blind-fresh-form.png")
    page.get_by_text("Raw live stats (JSON) and comparison id").click()
    blind_id = page.locator("#comparison-id").get_by_role("textbox").input_value()

    client = Client(app_url, verbose=False)
    *_, header, _diff = client.predict(blind_id, api_name="/reopen")
    assert "demo-mamba" not in header and "demo-llama" not in header and "hidden until a vote" in header
    page.locator("#vote").get_by_label("A is better").check()
    page.locator("#vote-btn").click()
    page.wait_for_function("document.querySelector('#reveal').innerText.includes('Vote recorded')", timeout=20_000)
    *_, header, _diff = client.predict(blind_id, api_name="/reopen")
    assert "demo-mamba" in header and "demo-llama" in header
    votes = header.split("Votes:")[1]
    assert "left" in votes and "repetition" not in votes and "off-topic" not in votes and "less repetitive" not in votes


def test_the_review_export_downloads_as_a_file_named_for_its_format_and_the_random_pair_hides_its_cards(
        page, app_url, tmp_path):
    """The export reaches the browser as text saved under its name: no server path is ever sent. Picking
    the random pair hides both cards before any Compare."""
    from gradio_client import Client

    *_, cid = Client(app_url, verbose=False).predict("a comparison to export", max_new_tokens=2, api_name="/compare")
    page.goto(app_url)
    page.wait_for_selector("#compare-btn")
    page.locator("#preset input").click()
    page.get_by_role("option", name="Random pair, blind").click()
    page.wait_for_function("document.querySelector('#left-card').innerText.includes('hidden until you vote')",
                           timeout=20_000)
    assert "demo-mamba" not in page.locator("#left-card").inner_text() + page.locator("#right-card").inner_text()
    page.get_by_role("tab", name="Review").click()
    page.get_by_label("jsonl").check()
    with page.expect_download(timeout=20_000) as info:
        page.locator("#export-btn").click()
    download = info.value
    assert download.suggested_filename.startswith("comparer-reviews-") and download.suggested_filename.endswith(".jsonl")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines) and cid in saved.read_text()
