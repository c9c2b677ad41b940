"""The Scaling tab in a real browser (Debian's Chromium through Playwright): the record on screen is the
pair's own, the figure is readable at desktop and phone sizes, and a live sweep says at once what it does.
Screenshots go where COMPARER_SCREENSHOT_DIR points (else the test's temp folder)."""

import os

import pytest

from tests.browser import launched, needs_chromium

from comparer.bench.measure import this_device_name
from comparer.bench.plots import STACKED_HEIGHT_PX

pytestmark = needs_chromium
PLOT = "document.querySelector('#scaling-plot .js-plotly-plot')"
DEMO = "cpu-offline-demo.json"


@pytest.fixture(scope="module")
def browser(app_url):
    yield from launched()


def _scaling_page(browser, app_url, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(app_url)
    page.wait_for_selector("#compare-btn")
    page.get_by_role("tab", name="Scaling").click()
    page.wait_for_selector("#scaling-plot .main-svg", timeout=30_000)
    page.wait_for_function(f"{PLOT} && {PLOT}.data.length > 0 && {PLOT}._fullLayout.height > 0", timeout=30_000)
    page.wait_for_timeout(500)  # the page's check of the width (every 250 ms) and any redraw it asks for
    return page


@pytest.fixture(scope="module")
def desktop(browser, app_url):
    page = _scaling_page(browser, app_url, 1280, 900)
    yield page
    page.close()


@pytest.fixture(scope="module")
def phone(browser, app_url):
    page = _scaling_page(browser, app_url, 390, 844)
    page.wait_for_function(f"{PLOT}.layout.height === {STACKED_HEIGHT_PX}", timeout=5_000)
    page.wait_for_timeout(300)  # the relayout's redraw
    yield page
    page.close()


def _screenshot(page, tmp_path, name: str, selector: str | None = None) -> None:
    out = os.environ.get("COMPARER_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(out, exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=os.path.join(out, name))


def _chips(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('#record-choice .token')].map(e => e.innerText.trim())")


def _rects(page, selector: str) -> list[dict]:
    return page.evaluate(f"[...{PLOT}.querySelectorAll({selector!r})].map(e => e.getBoundingClientRect().toJSON())")


def _tick_labels(page, n: str, axis: str) -> list[tuple[float, str]]:
    """(screen position along the axis, label) of panel n's rendered tick labels (plotly classes them
    xtick, x2tick, ... inside subplot xy, x2y2, ...)."""
    subplot, tick = f"x{n}y{n}", f"{axis}{n}tick"
    return page.evaluate(f"""[...{PLOT}.querySelectorAll('.subplot.{subplot} .{axis}axislayer-above .{tick} text')]
        .map(e => {{const r = e.getBoundingClientRect(); return ['{axis}' === 'x' ? r.x : -r.y, e.textContent];}})""")


def _number(label: str) -> float:
    scale = {"K": 1024, "M": 2**20}.get(label[-1], 1)
    return float(label.rstrip("KM")) * scale


def test_the_tab_shows_the_demo_pairs_record_of_this_device_and_says_which(desktop, tmp_path):
    """The app's default pair is the offline demo pair on the CPU: its CPU record is shown, named, and
    said to be this machine's; no H200 file is among the chips."""
    shown = desktop.locator("#scaling-shown").inner_text()
    assert DEMO in shown and this_device_name() in shown and "this machine" in shown
    assert _chips(desktop) == [DEMO]
    models = desktop.evaluate(f"[...new Set({PLOT}.data.filter(t => t.meta && t.meta.model).map(t => t.meta.model))]")
    assert sorted(models) == ["demo-llama", "demo-mamba"]
    desktop.locator("#scaling-shown").scroll_into_view_if_needed()
    _screenshot(desktop, tmp_path, "scaling-1280.png")


def test_the_legend_sits_below_the_panels_inside_the_figure_with_one_colour_per_model(desktop):
    figure = desktop.evaluate(f"{PLOT}.getBoundingClientRect().toJSON()")
    legend = _rects(desktop, ".legend")[0]
    lowest_axis_text = max(r["bottom"] for r in _rects(desktop, ".xtitle") + _rects(desktop, ".xtick text"))
    assert legend["top"] >= lowest_axis_text - 1, (legend, lowest_axis_text)
    assert figure["left"] <= legend["left"] and legend["right"] <= figure["right"] + 1
    assert legend["bottom"] <= figure["bottom"] + 1
    title = _rects(desktop, ".gtitle .line")[0]
    panel_tops = min(r["top"] for r in _rects(desktop, ".bglayer .bg"))
    assert figure["top"] <= title["top"] and title["bottom"] <= panel_tops  # the title is whole, above the panels
    colours = desktop.evaluate(f"""(() => {{ const c = {{}};
        for (const t of {PLOT}.data) if (t.meta && t.meta.model) (c[t.meta.model] ||= new Set()).add(t.line.color);
        return Object.fromEntries(Object.entries(c).map(([m, s]) => [m, [...s]])); }})()""")
    assert all(len(c) == 1 for c in colours.values()), colours
    assert colours["demo-mamba"] != colours["demo-llama"]
    entries = desktop.evaluate(f"{PLOT}.querySelectorAll('.legend .traces').length")
    assert entries == 3  # one per model run, one for every dashed bound


def test_tick_labels_read_as_whole_numbers_in_order(desktop):
    """Log axes are labelled at chosen values (64 … 1K, 0.01 … 0.1), never plotly's '5 1000 2 5'."""
    for n in ("", "2", "3"):
        labels = [label for _, label in sorted(_tick_labels(desktop, n, "x"))]
        values = [_number(label) for label in labels]
        assert len(values) >= 3 and values == sorted(set(values)), labels
    ttft = [label for _, label in sorted(_tick_labels(desktop, "2", "y"))]
    values = [float(label) for label in ttft]
    assert len(values) >= 3 and values == sorted(set(values)), ttft


def test_on_a_phone_the_three_panels_stack_and_fit_the_screen(phone, tmp_path):
    layout = phone.evaluate(f"""(() => {{ const f = {PLOT}._fullLayout;
        return ['', '2', '3'].map(n => [f['xaxis' + n].domain, f['yaxis' + n].domain]); }})()""")
    xs, ys = [x for x, _ in layout], sorted(y for _, y in layout)
    assert all(x[0] < 0.5 < x[1] for x in xs)  # every panel spans the width: their x domains overlap
    assert all(low[1] <= high[0] for low, high in zip(ys, ys[1:]))  # one above the other
    width = phone.viewport_size["width"]
    assert _rects(phone, ".legend")[0]["right"] <= width
    title, modebar = _rects(phone, ".gtitle .line")[0], phone.evaluate(
        f"{PLOT}.querySelector('.modebar').getBoundingClientRect().toJSON()")
    assert title["top"] >= modebar["bottom"] - 1 or title["right"] <= modebar["left"]  # not under the tool bar
    _screenshot(phone, tmp_path, "scaling-390.png", "#scaling-plot")


def test_a_live_sweep_shows_a_labelled_progress_bar_at_once_then_names_what_it_plots(desktop, tmp_path):
    desktop.get_by_text("Run a live sweep").click()
    desktop.get_by_label("contexts (tokens)").fill("8,16")
    desktop.locator("#run-sweep").click()
    label = "document.querySelector('#scaling-plot .progress-level-inner')"
    desktop.wait_for_function(f"{label} && {label}.innerText.trim().length > 0", timeout=2_000)
    text = desktop.evaluate(f"{label}.innerText")
    assert any(word in text for word in ("loading", "reading", "measuring", "points")), text
    _screenshot(desktop, tmp_path, "scaling-progress.png")
    desktop.wait_for_function("document.querySelector('#scaling-shown').innerText.includes('live sweep')",
                              timeout=120_000)
    assert _chips(desktop) == []  # the stored-record chips no longer name what is not plotted
    shown = desktop.locator("#scaling-shown").inner_text()
    assert "offline" in shown and this_device_name() in shown
    desktop.locator("#scaling-shown").scroll_into_view_if_needed()
    _screenshot(desktop, tmp_path, "scaling-live.png")


