"""The Scaling tab: stored benchmark records by default, a live sweep on the local device, downloads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr

from comparer.bench.measure import this_device_name
from comparer.bench.plots import scaling_figure
from comparer.bench.records import BenchRecord, to_csv
from comparer.bench.run import measure_models, new_record, summary_table, weights_label
from comparer.memory import is_cuda
from comparer.models.presets import RANDOM, get_preset
from comparer.models.presets import SIDES
from comparer.paths import DATA_DIR, RECORDS_DIR
from comparer.pool import ModelPool
from comparer.ui.errors import clear_errors

STORED_DIR = RECORDS_DIR
# The headline pair on the H200: transformers generate for both, and each model's fast engine.
DEFAULT_RECORDS = ["h200-paper-random.json", "h200-paper-mamba-fast.json", "h200-paper-pythia-fast.json"]
LIVE_DIR = DATA_DIR / "benchmarks"
MAX_LIVE_CONTEXT = {"cpu": 4096, "cuda": 131072}
# A live sweep holds the generation slot (so each point measures its model alone), so it is bounded: a few
# contexts and a time budget, after which it ends with the points it has; a comparison waits at most that.
MAX_LIVE_POINTS = 6
SWEEP_BUDGET_S = 90.0


class ScalingService:
    def __init__(self, pool: ModelPool, live_dir: Path = LIVE_DIR, live_sweep: bool = True,
                 budget_s: float = SWEEP_BUDGET_S):
        """``live_sweep`` False: the operator has not opened live sweeps (public deployments, see app.py)."""
        self.pool, self.live_dir, self.live_sweep, self.budget_s = pool, Path(live_dir), live_sweep, budget_s
        self._stop = threading.Event()
        self.measuring = threading.Event()  # set while a sweep's points are being measured

    def stored_records(self) -> list[str]:
        return sorted(p.name for p in STORED_DIR.glob("*.json"))

    def show(self, names: list[str] | str) -> tuple:
        """Plot, table and downloads for one or more stored records, overlaid."""
        names = [names] if isinstance(names, str) else list(names or [])
        if not names:
            raise gr.Error("Pick at least one stored record.")
        paths = [STORED_DIR / Path(name).name for name in names]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise gr.Error(f"No stored record {missing}. Choose from: {', '.join(self.stored_records())}.")
        records = [BenchRecord.load(p) for p in paths]
        json_path = paths[0] if len(paths) == 1 else self._combined_json(records)
        return self._render(records, json_path)

    def _combined_json(self, records: list[BenchRecord]) -> Path:
        path = self.live_dir / "selected-records.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[\n" + ",\n".join(r.to_json() for r in records) + "\n]")
        return path

    @clear_errors("The live sweep")
    def run_live(self, preset: str, contexts_text: str, new_tokens: float, repeats: float,
                 progress=gr.Progress()) -> tuple:
        """Measure the loaded pair on this device, each model alone, and show the result; ends early at the
        time budget or on Stop, with the points measured by then."""
        if not self.live_sweep:
            raise gr.Error("Live sweeps are operator-only on this deployment (they hold the GPU for everyone); "
                           "the stored records above are the measured figures.")
        if preset == RANDOM:
            raise gr.Error("A live sweep measures a named pair: pick one in 'Model pair' (the random pair is "
                           "for blind comparisons).")
        models = self.pool.pair(preset)
        device = models["left"].card.device
        contexts = parse_contexts(contexts_text, MAX_LIVE_CONTEXT["cuda" if is_cuda(device) else "cpu"])
        record = new_record(preset, weights_label(get_preset(preset), self.pool.random_weights), device,
                            contexts, int(new_tokens), int(repeats))
        self._stop.clear()
        deadline_s = time.perf_counter() + self.budget_s
        until = lambda: self._stop.is_set() or time.perf_counter() > deadline_s  # noqa: E731
        self.measuring.set()
        try:
            measure_models(record, [models[side] for side in SIDES], len(SIDES), int(new_tokens), int(repeats),
                           lambda d, t, label: progress(d / t, desc=label), until=until, stop=self._stop)
        finally:
            self.measuring.clear()
        path = self.live_dir / f"live-{preset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        record.save(path)
        plot, table, *files = self._render([record], path)
        if any(len(run.points) < len(contexts) for run in record.models):
            why = "Stop" if self._stop.is_set() else f"the {self.budget_s:.0f} s budget"
            table = f"**Sweep ended early by {why}**: the points measured by then are shown.\n\n{table}"
        return (plot, table, *files)

    def stop_live(self) -> None:
        """Stop the running sweep: the generation in flight ends at its next token, its point is dropped."""
        self._stop.set()

    def _render(self, records: list[BenchRecord], json_path: Path) -> tuple:
        csv_path = self.live_dir / (json_path.stem + ".csv")
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.write_text(to_csv(records))
        here = this_device_name()
        provenance = "\n".join(f"- {provenance_line(r, here)}" for r in records)
        table = provenance + "\n\n" + "\n\n".join(f"```\n{summary_table(r)}\n```" for r in records)
        return scaling_figure(records), table, str(json_path), str(csv_path)


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


def scaling_tab(service: ScalingService, preset: gr.Dropdown) -> tuple:
    """Build the tab's components and wire them (the preset dropdown comes from the Compare tab)."""
    gr.Markdown("Measured **alone**, warm-up excluded, median with p10–p90 over repeats. Stored runs come "
                "from `python -m comparer.bench`; their titles say the device, dtype, kernel path and "
                "whether the weights were random (exact configs) or trained. Dashed lines: analytic bounds.")
    records = service.stored_records()
    choice = gr.Dropdown(records, value=[r for r in DEFAULT_RECORDS if r in records], multiselect=True,
                         label="Stored benchmark records (overlaid)", elem_id="record-choice")
    plot = gr.Plot(elem_id="scaling-plot")
    table = gr.Markdown()
    with gr.Row():
        json_file = gr.DownloadButton("Download JSON")
        csv_file = gr.DownloadButton("Download CSV")
    with gr.Accordion("Run a live sweep on this device (the pair selected on the Compare tab)", open=False):
        with gr.Row():
            contexts = gr.Textbox("64,256,1024", label="contexts (tokens)")
            new_tokens = gr.Slider(2, 256, value=16, step=1, label="new tokens")
            repeats = gr.Slider(1, 10, value=3, step=1, label="repeats")
        with gr.Row():
            run = gr.Button("Run sweep", elem_id="run-sweep", interactive=service.live_sweep)
            stop = gr.Button("Stop sweep", elem_id="stop-sweep", variant="stop", interactive=service.live_sweep)
        gr.Markdown(f"At most {MAX_LIVE_POINTS} contexts and {service.budget_s:.0f} s; comparisons wait meanwhile."
                    + ("" if service.live_sweep else " **Operator-only on this deployment.**"))
    outputs = [plot, table, json_file, csv_file]
    choice.change(service.show, inputs=[choice], outputs=outputs, api_visibility="private")
    sweeping = run.click(service.run_live, inputs=[preset, contexts, new_tokens, repeats], outputs=outputs,
                         concurrency_id="generation", concurrency_limit=1, api_name="sweep")
    stop.click(service.stop_live, inputs=None, outputs=None, cancels=[sweeping], api_name="stop_sweep", queue=False)
    return choice, outputs
