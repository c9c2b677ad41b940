"""The Review tab in a real browser (Debian's Chromium driven by Playwright) at desktop and phone sizes:
headers in every column, the columns a reviewer uses, the id on screen, filter by model, a tally in pane
order that says what it counts, the leaderboard with intervals, the side-by-side view."""

import os
import re

import pytest

from tests.browser import launched, needs_chromium

pytestmark = needs_chromium
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
NOTE = "<b>bold?</b> [link](http://example.com) the left one rambles"

# a Gradio Dataframe as rows of cell texts (only the rows it has rendered: newest first) and its headers
TABLE_JS = """(id) => { const rows = {};
  document.querySelectorAll(`#${id} [role=gridcell]`).forEach(c => {
    (rows[+c.dataset.row] ||= [])[+c.dataset.col] = c.innerText.trim(); });
  return Object.keys(rows).sort((a, b) => a - b).map(r => rows[r]); }"""
HEADERS_JS = """(id) => { const seen = {};
  document.querySelectorAll(`#${id} th[role=columnheader]`).forEach(th => {
    seen[th.getAttribute('aria-colindex')] = th.querySelector('span').innerText.trim(); });
  return Object.keys(seen).sort((a, b) => a - b).map(k => seen[k]); }"""


@pytest.fixture(scope="module")
def browser():
    yield from launched()


def _open(browser, app_url, viewport):
    page = browser.new_page(viewport=viewport)
    page.goto(app_url)
    page.wait_for_selector("#compare-btn")
    return page


def _screenshot(page, tmp_path, name: str) -> None:
    """Saved where COMPARER_SCREENSHOT_DIR points (CI keeps them), else in the test's temp folder."""
    out = os.environ.get("COMPARER_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(out, exist_ok=True)
    page.screenshot(path=os.path.join(out, name), full_page=True)


def _review_tab(page) -> None:
    """The Review tab, refreshed, once the tally has answered."""
    page.get_by_role("tab", name="Review").click()
    page.locator("#refresh-btn").click()
    page.wait_for_function("document.querySelector('#tally').innerText.trim().length > 0", timeout=20_000)
    page.wait_for_timeout(800)


def _history(page) -> list[dict]:
    headers = page.evaluate(HEADERS_JS, "history")
    return [dict(zip(headers, row)) for row in page.evaluate(TABLE_JS, "history")]


def _pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_an_empty_review_tab_has_a_header_in_every_column(browser, app_url, tmp_path):
    page = _open(browser, app_url, DESKTOP)
    _review_tab(page)
    history, board = page.evaluate(HEADERS_JS, "history"), page.evaluate(HEADERS_JS, "leaderboard")
    assert len(history) == 12 and all(history), history
    assert len(board) == 8 and all(board), board
    assert "No votes yet" in page.locator("#tally").inner_text()
    _screenshot(page, tmp_path, "review-empty-1280.png")
    page.close()


def test_after_a_comparison_and_a_vote_the_history_shows_status_vote_tags_note_and_speeds(browser, app_url,
                                                                                            tmp_path):
    """Compare and vote in the page; the Review tab's row for it names the winner, shows tags, the note as
    typed (text, not HTML), both sides' decode tok/s as the pane strips showed them, and its whole id
    inside the table at 1280 wide with no sideways scrolling."""
    page = _open(browser, app_url, DESKTOP)
    assert "primary" in page.locator("#vote-btn").get_attribute("class")  # a button, not a grey block
    page.locator("#prompt textarea").fill("The review row prompt: a heron")
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#left-stats').innerText.includes('done') && "
                           "document.querySelector('#right-stats').innerText.includes('done')", timeout=60_000)
    speeds = [re.search(r"([\d.]+) tok/s", page.locator(f"#{side}-stats").inner_text()).group(1)
              for side in ("left", "right")]
    page.locator("#vote").get_by_label("Left is better").check()
    page.locator("#tags").get_by_label("fluent").check()
    page.locator("#tags").get_by_label("repetition").check()
    page.get_by_label("note (optional)").fill(NOTE)
    page.locator("#vote-btn").click()
    page.wait_for_function("document.querySelector('#reveal').innerText.includes('Vote recorded')", timeout=20_000)
    left_model = re.search(r"Left was (\S+),", page.locator("#reveal").inner_text()).group(1)
    page.locator("#vote-btn").scroll_into_view_if_needed()
    page.screenshot(path=os.path.join(os.environ.get("COMPARER_SCREENSHOT_DIR", str(tmp_path)), "review-vote-panel.png"))

    _review_tab(page)
    row = next(r for r in _history(page) if r["prompt"].startswith("The review row prompt"))
    assert row["status"] == "done" and row["vote"] == f"{left_model} better" and row["left"] == left_model
    assert row["tags"] == "fluent, repetition" and row["note"] == NOTE  # shown as typed
    assert row["decode tok/s (left / right)"] == f"{speeds[0]} / {speeds[1]}"
    assert page.locator("#history b").count() == 0 and page.locator("#history a").count() == 0
    assert re.fullmatch(r"[0-9a-f]{32}", row["id"])
    box = page.evaluate("""() => { const grid = document.querySelector('#history [role=grid]');
      const scroller = [...grid.querySelectorAll('div')].find(d => d.style.maxHeight) || grid;
      const cell = document.querySelector('#history [data-testid=cell-0-11] span');
      const g = grid.getBoundingClientRect(), c = cell.getBoundingClientRect();
      return {over: scroller.scrollWidth - scroller.clientWidth, cellRight: c.right, gridRight: g.right,
              cellWidth: c.width, textWidth: cell.scrollWidth, lines: cell.getClientRects().length}; }""")
    assert box["over"] <= 1 and box["cellRight"] <= box["gridRight"] and box["textWidth"] <= box["cellWidth"] + 1, box
    assert box["lines"] == 1, box  # the whole id on one line, to read and copy
    _screenshot(page, tmp_path, "review-history-1280.png")
    page.close()


def _seed_votes(app_url) -> tuple[str, list[tuple[str, bool]]]:
    """Comparisons voted through the API, two of them blind (sides shuffled), one more blind left unvoted;
    returns the offline pair's left model and (winner, blind) of each decisive vote, read from the reveal."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    left, wins = None, []
    for i, (vote, blind) in enumerate([("right", False), ("left", False), ("tie", False), ("right", True),
                                       ("left", True), (None, True)]):
        *_, stats, cid = client.predict(f"seeded prompt {i}", max_new_tokens=4, blind=blind, api_name="/compare")
        left = left or stats["left"]["model_id"]
        if vote:
            reveal, _ = client.predict(cid, vote, [], "", api_name="/vote")
            shown = re.search(r"Left was \*\*(.+?)\*\*, right was \*\*(.+?)\*\*", reveal).groups()
            if vote in ("left", "right"):
                wins.append((shown[0] if vote == "left" else shown[1], blind))
    return left, wins


def test_filter_by_model_tally_in_pane_order_and_the_leaderboard_with_intervals(browser, app_url, tmp_path):
    """Filtered by one model and 'the chosen model won', every row's verdict names that model, whatever side
    it sat on; the tally's A is the left pane's model and the row says what the rate counts; the leaderboard
    ranks both models with an interval around each rating."""
    left_model, wins = _seed_votes(app_url)
    page = _open(browser, app_url, DESKTOP)
    _review_tab(page)
    tally = page.locator("#tally").inner_text()
    cells = next(line for line in tally.splitlines() if left_model in line).split("\t")
    assert cells[0].strip() == left_model and re.fullmatch(r"\d+% of \d+ \(\d+%–\d+%\)", cells[6].strip()), cells
    assert "A (left)" in tally and "both bad" in tally and "ties and both bad are left out" in tally

    board = page.evaluate(TABLE_JS, "leaderboard")
    assert len(board) == 2 and left_model in {r[1] for r in board}
    for rank, model, rating, interval, votes, *_ in board:
        low, high = (float(x) for x in interval.split(" – "))
        assert low <= float(rating) <= high and int(votes) >= 4
    other = next(r[1] for r in board if r[1] != left_model)

    _pick(page, "filter-model", other)
    _pick(page, "filter-vote", "the chosen model won")
    page.locator("#refresh-btn").click()
    page.wait_for_timeout(1500)
    rows = _history(page)
    expected = [blind for winner, blind in wins if winner == other]
    assert len(rows) == len(expected) >= 1 and all(r["vote"] == f"{other} better" for r in rows), rows
    assert sorted(r["blind"] == "true" for r in rows) == sorted(expected)  # blind runs count, either side
    assert not any("hidden until a vote" in r["left"] for r in rows)
    _screenshot(page, tmp_path, "review-filtered-1280.png")
    page.close()


def test_on_a_phone_the_history_scrolls_in_its_box_and_a_reopened_pair_reads_side_by_side(browser, app_url,
                                                                                          tmp_path):
    """390 px: the page itself never scrolls sideways (the table does, in its box); clicking a row re-opens it,
    the two outputs in labelled columns (stacked on a phone, side by side on a desktop)."""
    page = _open(browser, app_url, PHONE)
    _review_tab(page)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    page.locator("#history [data-testid=cell-0-0]").click(force=True)  # the sticky header overlaps it
    page.wait_for_function("document.querySelector('#side-by-side').innerText.includes('left:')", timeout=20_000)
    columns = page.locator("#side-by-side div[style*='grid'] > div")
    assert columns.count() == 2
    first, second = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert second["y"] >= first["y"] + first["height"] - 1  # stacked
    _screenshot(page, tmp_path, "review-phone-390.png")
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(500)
    first, second = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert second["x"] > first["x"] + first["width"] - 1 and abs(second["y"] - first["y"]) < 2  # side by side
    assert "<mark" in page.locator("#side-by-side").inner_html() or "No meaningful overlap" in page.locator(
        "#side-by-side").inner_text()
    _screenshot(page, tmp_path, "review-reopen-1280.png")
    page.close()
