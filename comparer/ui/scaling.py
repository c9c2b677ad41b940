"""The Scaling tab: stored benchmark records by default, a live sweep on the local device, downloads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from comparer.bench.measure import this_device_name
from comparer.bench.plots import energy_figure, scaling_figure
from comparer.bench.records import BenchRecord, to_csv
from comparer.bench.run import measure_models, new_record, summary_table, weights_label
from comparer.memory import is_cuda
from comparer.models.presets import RANDOM, get_preset
from comparer.models.presets import SIDES
from comparer.paths import DATA_DIR, RECORDS_DIR
from comparer.pool import ModelPool
from comparer.ui.errors import clear_errors

STORED_DIR = RECORDS_DIR
# The headline pair on the H200: transformers generate for both, and each model's fast engine. Shown for
# the paper preset, and where no record of the pair on screen exists at all.
DEFAULT_RECORDS = ["h200-paper-random.json", "h200-paper-mamba-fast.json", "h200-paper-pythia-fast.json"]
HEADLINES = {"paper": DEFAULT_RECORDS}
# p90/p10 over repeats above this: the point is flagged, as its median may not be the model's own pace
SPREAD_LIMIT = 1.2
# Below this plot width (px) the page stacks the three panels (plots.py keeps both shapes in the figure).
STACK_BELOW_PX = 700
LIVE_DIR = DATA_DIR / "benchmarks"
MAX_LIVE_CONTEXT = {"cpu": 4096, "cuda": 131072}
# A live sweep holds the generation slot (so each point measures its model alone), so it is bounded: a few
# contexts and a time budget, after which it ends with the points it has; a comparison waits at most that.
MAX_LIVE_POINTS = 6
SWEEP_BUDGET_S = 90.0


@dataclass(frozen=True)
class StoredRecord:
    """What the default choice needs to know of a stored record, read once when the tab is built."""

    name: str
    preset: str
    device_name: str
    model_ids: tuple[str, ...]
    created_at: str

    @classmethod
    def read(cls, path: Path) -> "StoredRecord":
        record = BenchRecord.load(path)
        return cls(path.name, record.preset, record.environment.device_name,
                   tuple(m.model_id for m in record.models), record.created_at)


def default_records(preset: str, here: str, stored: list[StoredRecord]) -> list[str]:
    """The records to show for the pair on screen: its records from this device, else from another one,
    else the H200 paper headline. Among several, the preset's curated headline where it is stored, else
    the newest record holding the most of the pair's models (one record, so one run per model)."""
    for on_this_device in (True, False):
        candidates = [s for s in stored if s.preset == preset and (s.device_name == here) == on_this_device]
        headline = HEADLINES.get(preset, [])
        if headline and set(headline) <= {s.name for s in candidates}:
            return list(headline)
        if candidates:
            return [max(candidates, key=lambda s: (len(s.model_ids), s.created_at)).name]
    return [name for name in DEFAULT_RECORDS if name in {s.name for s in stored}]


class ScalingService:
    def __init__(self, pool: ModelPool, live_dir: Path = LIVE_DIR, live_sweep: bool = True,
                 budget_s: float = SWEEP_BUDGET_S):
        """``live_sweep`` False: the operator has not opened live sweeps (public deployments, see app.py)."""
        self.pool, self.live_dir, self.live_sweep, self.budget_s = pool, Path(live_dir), live_sweep, budget_s
        self._stop = threading.Event()
        self.measuring = threading.Event()  # set while a sweep's points are being measured

    def stored_records(self) -> list[str]:
        return sorted(p.name for p in STORED_DIR.glob("*.json"))

    def defaults_for(self, preset: str) -> list[str]:
        return default_records(preset, this_device_name(), [StoredRecord.read(STORED_DIR / n)
                                                            for n in self.stored_records()])

    def show(self, names: list[str] | str, preset: str | None = None) -> tuple:
        """What is shown, plot, table and downloads for one or more stored records, overlaid; ``preset``:
        the pair on screen, named where the records are of another pair."""
        names = [names] if isinstance(names, str) else list(names or [])
        if not names:
            raise gr.Error("Pick at least one stored record.")
        paths = [STORED_DIR / Path(name).name for name in names]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise gr.Error(f"No stored record {missing}. Choose from: {', '.join(self.stored_records())}.")
        records = [BenchRecord.load(p) for p in paths]
        json_path = paths[0] if len(paths) == 1 else self._combined_json(records)
        return (shown_line(names, records, this_device_name(), preset), *self._render(records, json_path))

    def follow_preset(self, preset: str, picked: bool) -> tuple:
        """The Compare tab's pair changed: show its default records, unless the visitor has picked
        records here (then the choice stays theirs until the page is reloaded)."""
        if picked:
            return (gr.skip(),) * 6
        names = self.defaults_for(preset)
        return (gr.update(value=names), *self.show(names, preset))

    def _combined_json(self, records: list[BenchRecord]) -> Path:
        path = self.live_dir / "selected-records.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[\n" + ",\n".join(r.to_json() for r in records) + "\n]")
        return path

    @clear_errors("The live sweep")
    def run_live(self, preset: str, contexts_text: str, new_tokens: float, repeats: float,
                 progress=gr.Progress()) -> tuple:
        """Measure the loaded pair on this device, each model alone, and show the result; ends early at the
        time budget or on Stop, with the points measured by then. The progress bar is labelled before the
        slow parts (loading the pair, probing the device), so the page says at once what it is doing."""
        if not self.live_sweep:
            raise gr.Error("Live sweeps are operator-only on this deployment (they hold the GPU for everyone); "
                           "the stored records above are the measured figures.")
        if preset == RANDOM:
            raise gr.Error("A live sweep measures a named pair: pick one in 'Model pair' (the random pair is "
                           "for blind comparisons).")
        progress(0, desc=f"loading the {preset} pair…")
        models = self.pool.pair(preset)
        device = models["left"].card.device
        contexts = parse_contexts(contexts_text, MAX_LIVE_CONTEXT["cuda" if is_cuda(device) else "cpu"])
        progress(0, desc="reading this device (versions, memory bandwidth, matmul rate)…")
        record = new_record(preset, weights_label(get_preset(preset), self.pool.random_weights), device,
                            contexts, int(new_tokens), int(repeats))
        progress(0, desc=f"measuring {len(SIDES) * len(contexts)} points, each model alone…")
        self._measure(record, models, int(new_tokens), int(repeats), progress)
        path = self.live_dir / f"live-{preset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        record.save(path)
        plot, table, *files = self._render([record], path, live=True)
        if any(len(run.points) < len(contexts) for run in record.models):
            why = "Stop" if self._stop.is_set() else f"the {self.budget_s:.0f} s budget"
            table = f"**Sweep ended early by {why}**: the points measured by then are shown.\n\n{table}"
        return (plot, table, *files)

    def _measure(self, record: BenchRecord, models: dict, new_tokens: int, repeats: int, progress) -> None:
        self._stop.clear()
        deadline_s = time.perf_counter() + self.budget_s
        until = lambda: self._stop.is_set() or time.perf_counter() > deadline_s  # noqa: E731
        self.measuring.set()
        try:
            measure_models(record, [models[side] for side in SIDES], len(SIDES), new_tokens, repeats,
                           lambda d, t, label: progress(d / t, desc=f"{d}/{t} points · {label}"),
                           until=until, stop=self._stop)
        finally:
            self.measuring.clear()

    def live_shown(self, preset: str) -> tuple:
        """After a live sweep: the stored-record chips are emptied (they are not what is plotted) and
        the line above the plot says what is."""
        return gr.update(value=[]), (f"**Shown: a live sweep** of the {preset} pair on {this_device_name()} "
                                     "(this machine), just measured; not among the stored records (download "
                                     "it below). Pick stored records above to show them again.")

    def stop_live(self) -> None:
        """Stop the running sweep: the generation in flight ends at its next token, its point is dropped."""
        self._stop.set()

    def _render(self, records: list[BenchRecord], json_path: Path, live: bool = False) -> tuple:
        csv_path = self.live_dir / (json_path.stem + ".csv")
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.write_text(to_csv(records))
        here = this_device_name()
        provenance = "\n".join(f"- {provenance_line(r, here)}" for r in records)
        spread = spread_note(records, live)
        tables = "\n\n".join(f"```\n{summary_table(r)}\n```" for r in records)
        table = "\n\n".join(part for part in (spread, provenance, tables) if part)
        return scaling_figure(records), table, str(json_path), str(csv_path)


def energy_view(names: list[str] | str | None):
    """The J/token plot of the records chosen, shown only where one of them measured energy."""
    names = [names] if isinstance(names, str) else list(names or [])
    paths = [STORED_DIR / Path(n).name for n in names if (STORED_DIR / Path(n).name).exists()]
    figure = energy_figure([BenchRecord.load(p) for p in paths]) if paths else None
    return gr.Plot(value=figure, visible=figure is not None)


def shown_line(names: list[str], records: list[BenchRecord], here: str, preset: str | None = None) -> str:
    """The line above the plot: which stored records are drawn, of which pair, and whether their figures
    are this machine's or another's (an H200's figures on a CPU host are the H200's)."""
    files = ", ".join(f"`{name}`" for name in names)
    pairs = sorted({r.preset for r in records})
    models = sorted({m.model_id for r in records for m in r.models}, key=lambda m: m.lower())
    devices = sorted({r.environment.device_name for r in records})
    where = "this machine" if devices == [here] else f"**another machine's figures, not this one's** ({here})"
    lead = "" if preset is None or preset in pairs else f"No stored record of the {preset} pair; "
    return (f"{lead}**Shown:** {files}: the {' / '.join(pairs)} pair ({', '.join(models)}), measured on "
            f"{' and '.join(devices)}: {where}.")


def spread_warnings(record: BenchRecord, limit: float = SPREAD_LIMIT) -> list[str]:
    """Points whose repeats vary by more than ``limit`` (p90 / p10) in TTFT or decode tok/s, as
    'demo-mamba decode tok/s at 256 tokens: 36 %'. A wide spread says the device was not the model's
    alone (another process, frequency scaling), so the median is a reading to take with care."""
    warnings = []
    for run in record.models:
        for point in (p for p in run.points if p.status == "ok"):
            for label, summary in (("TTFT", point.ttft_s), ("decode tok/s", point.decode_tok_per_s)):
                spread_pct = round(100 * (summary.p90 / summary.p10 - 1)) if summary.p10 > 0 else 0
                if spread_pct > round(100 * (limit - 1)):
                    warnings.append(f"{run.model_id} {label} at {point.context_tokens} tokens: {spread_pct} %")
    return warnings


def spread_note(records: list[BenchRecord], live: bool) -> str:
    """One warning line for the points that vary, or '' when none does."""
    warnings = [w for r in records for w in spread_warnings(r)]
    if not warnings:
        return ""
    who = "another process may be using the device" if live else "another process may have been using the device"
    return (f"**⚠ Runs vary** by more than {round(100 * (SPREAD_LIMIT - 1))} % (p10 to p90 over repeats) at "
            f"{len(warnings)} point(s): {who}; read these medians with care. " + "; ".join(warnings) + ".")


def provenance_line(record: BenchRecord, here: str) -> str:
    """Where a record's figures were measured, said plainly when that is not the machine serving the page
    (a Space shows H200 records: they are H200 figures, not its GPU's)."""
    made = f"measured on {record.environment.device_name}, {record.created_at[:10]}"
    if record.environment.device_name == here:
        return f"**{made}** (this machine)."
    return f"**{made}: figures of that machine, not of this one** ({here})."


def parse_contexts(text: str, max_context: int) -> list[int]:
    """'64, 256,1024' -> [64, 256, 1024], with a clear error for anything else."""
    if len(str(text)) > 200:
        raise gr.Error(f"Give at most {MAX_LIVE_POINTS} contexts, e.g. 64,256,1024.")
    try:
        contexts = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise gr.Error(f"Contexts must be whole numbers separated by commas, e.g. 64,256,1024; got {text!r}.")
    if not contexts or contexts[0] < 1 or contexts[-1] > max_context:
        raise gr.Error(f"Give 1 to {max_context} tokens per context on this device; got {text!r}.")
    if len(contexts) > MAX_LIVE_POINTS:
        raise gr.Error(f"Give at most {MAX_LIVE_POINTS} contexts (a live sweep holds the device for everyone); "
                       f"got {len(contexts)}.")
    return contexts


# Gradio re-draws the figure with Plotly.react on every new value, which resets its layout, and no Python
# hook sees the screen width; so the page checks the plot's width and applies the figure's own stacked
# (or wide) shape from layout.meta (plots.py) whenever it does not match.
STACK_JS = """
const fit = () => {
  const el = document.querySelector('#scaling-plot .js-plotly-plot');
  const shapes = el && el.layout && el.layout.meta;
  if (!window.Plotly || !shapes || !shapes.stacked || !el.clientWidth) return;
  const want = el.clientWidth < %d ? shapes.stacked : shapes.wide;
  const drawn = el._fullLayout;
  if (drawn && (drawn.height !== want.height || String(drawn.yaxis2.domain) !== String(want['yaxis2.domain'])))
    window.Plotly.relayout(el, want);
};
setInterval(fit, 250);
""" % STACK_BELOW_PX


def scaling_tab(service: ScalingService, preset: gr.Dropdown) -> tuple:
    """Build the tab's components and wire them (the preset dropdown comes from the Compare tab). The
    records shown follow that dropdown's pair until the visitor picks records here."""
    gr.Markdown("Measured **alone**, warm-up excluded, median with p10–p90 over repeats. Stored runs come "
                "from `python -m comparer.bench`; the line below says which are shown and where they were "
                "measured. Dashed lines: analytic bounds, in their model's colour. The records follow the "
                "pair on the Compare tab until you pick records here.")
    records = service.stored_records()
    choice = gr.Dropdown(records, value=service.defaults_for(preset.value), multiselect=True,
                         label="Stored benchmark records (overlaid)", elem_id="record-choice")
    picked = gr.State(False)
    shown = gr.Markdown(elem_id="scaling-shown")
    plot = gr.Plot(elem_id="scaling-plot", show_label=False)
    first = energy_view(choice.value)
    energy_plot = gr.Plot(first.value if hasattr(first, "value") else None, elem_id="energy-plot",
                          show_label=False, visible=bool(getattr(first, "visible", False)))
    gr.HTML("", js_on_load=STACK_JS, elem_id="scaling-stack")
    table = gr.Markdown(elem_id="scaling-table")
    with gr.Row():
        json_file = gr.DownloadButton("Download JSON")
        csv_file = gr.DownloadButton("Download CSV")
    sweep = _sweep_panel(service)
    outputs = [shown, plot, table, json_file, csv_file]
    choice.input(lambda: True, inputs=None, outputs=[picked], queue=False, api_visibility="private")
    choice.input(service.show, inputs=[choice], outputs=outputs, api_visibility="private")
    preset.change(service.follow_preset, inputs=[preset, picked], outputs=[choice, *outputs],
                  api_visibility="private")
    sweeping = sweep["run"].click(service.run_live, inputs=[preset, sweep["contexts"], sweep["new_tokens"],
                                                          sweep["repeats"]],
                                  outputs=outputs[1:], concurrency_id="generation", concurrency_limit=1,
                                  api_name="sweep")
    sweeping.success(service.live_shown, inputs=[preset], outputs=[choice, shown], api_visibility="private")
    sweep["stop"].click(service.stop_live, inputs=None, outputs=None, cancels=[sweeping], api_name="stop_sweep",
                        queue=False)
    choice.change(energy_view, inputs=[choice], outputs=[energy_plot], api_visibility="private", queue=False)
    return choice, outputs


def _sweep_panel(service: ScalingService) -> dict:
    with gr.Accordion("Run a live sweep on this device (the pair selected on the Compare tab)", open=False):
        with gr.Row():
            panel = {"contexts": gr.Textbox("64,256,1024", label="contexts (tokens)"),
                     "new_tokens": gr.Slider(2, 256, value=16, step=1, label="new tokens"),
                     "repeats": gr.Slider(1, 10, value=3, step=1, label="repeats")}
        with gr.Row():
            panel["run"] = gr.Button("Run sweep", elem_id="run-sweep", interactive=service.live_sweep)
            panel["stop"] = gr.Button("Stop sweep", elem_id="stop-sweep", variant="stop",
                                      interactive=service.live_sweep)
        gr.Markdown(f"At most {MAX_LIVE_POINTS} contexts and {service.budget_s:.0f} s; comparisons wait meanwhile."
                    + ("" if service.live_sweep else " **Operator-only on this deployment.**"))
    return panel
