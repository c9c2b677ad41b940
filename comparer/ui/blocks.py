"""The Blocks layout: build components and wire events to CompareService. No logic here."""

from __future__ import annotations

import gradio as gr

from comparer.models.presets import SIDES
from comparer.models.presets import RANDOM
from comparer.ui import share
from comparer.ui.handlers import CompareService
from comparer.ui.review import ReviewService, review_tab, vote_panel
from comparer.ui.scaling import ScalingService, scaling_tab

INTRO = """## comparer — Mamba vs Transformer, side by side
<small>The same prompt to both; each pane plays its model's own pace (on one device they run in turn, each
alone, replayed on one clock). Each card says what really runs: the architecture comes from the config,
not the name.</small>"""

# How the strip's figures are made, said beside them (issue: "explain the numbers where they are shown")
HOW_MEASURED = ("<small>**How these were measured**: timed on this server from the engine's own token "
                "timestamps (not your network; a served model: as its chunks reach this server, network "
                "included); *alone* = each model had the device to itself, *shared* = both "
                "at once; warm-up done at load, excluded; TTFT = prompt in → first token; tok/s over the tokens "
                "after the first; chars/s because the two tokenizers cut text differently; memory = that "
                "model's own weights + cache, as stated in each strip; J/token (where shown) = the energy counter "
                "of the whole GPU board (NVML) or CPU package (RAPL), idle draw included, over that model's "
                "whole generation, prompt included, / its tokens, only when it ran alone (not shown where "
                "there is no counter). Full method: Scaling tab.</small>")

# At 1280 x 800 both strips and both texts are in view while they stream: the panes scroll into view
# when Compare is pressed if they are not (the prompt may scroll away; it is not changing).
SHOW_PANES_JS = """() => {
  const el = document.querySelector('#panes');
  if (!el) return;
  const r = el.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) el.scrollIntoView({block: 'start'});
}"""

CSS = """
#panes textarea { font-size: 0.95rem; line-height: 1.45; }
.pane-strip { min-height: 3.2em; }
.pane-strip p { margin: 0 !important; }
#preset-info p { margin: 0 !important; font-size: 0.85rem; line-height: 1.35; }
#how-measured p { margin: 0 !important; }
"""


def build_demo(service: CompareService, scaling: ScalingService, reviews: ReviewService,
               default_preset: str) -> gr.Blocks:
    with gr.Blocks(title="comparer: Mamba vs Transformer", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Compare"):
            ui = _compare_tab(service, default_preset)
        with gr.Tab("Scaling"):
            record_choice, scaling_outputs = scaling_tab(scaling, ui["preset"])
        with gr.Tab("Review"):
            refresh, filters, history_outputs = review_tab(reviews, service.presets)
        _wire(demo, service, ui)
        _wire_votes(reviews, ui)
        demo.load(reviews.history, inputs=filters, outputs=history_outputs, api_visibility="private")
        demo.load(scaling.show, inputs=[record_choice], outputs=scaling_outputs, api_visibility="private")
    return demo


def _compare_tab(service: CompareService, default_preset: str) -> dict:
    choices = service.preset_choices()
    choices += [(RANDOM_LABEL, RANDOM)] if len(service.presets) > 1 else []
    choices += [("Custom pair (below)", "custom")] if service.free_entry else []
    ui = {}
    with gr.Row(equal_height=True):
        ui["preset"] = gr.Dropdown(choices, value=default_preset, label="Model pair", elem_id="preset", scale=4)
        ui["race"] = gr.Radio(RACE_CHOICES, value="auto", label="race", elem_id="race", scale=3)
        ui["blind"] = gr.Checkbox(False, label="blind (sides shuffled, names hidden until you vote)",
                                  elem_id="blind", scale=2)
    if service.free_entry:
        with gr.Accordion("Custom pair: any two Hub models (free entry enabled by the operator)", open=False):
            with gr.Row():
                ui["custom_left"] = gr.Textbox(label="left model id", placeholder="state-spaces/mamba-130m-hf")
                ui["custom_right"] = gr.Textbox(label="right model id", placeholder="EleutherAI/pythia-160m")
                ui["custom_load"] = gr.Button("Load custom pair")
    ui["preset_info"] = gr.Markdown(elem_id="preset-info")
    with gr.Row(equal_height=True):
        ui["prompt"] = gr.Textbox(label="Prompt", lines=3, max_lines=6, elem_id="prompt", scale=6,
                                  placeholder="Type the start of a text, or pick an example below")
        with gr.Column(scale=1, min_width=150):
            ui["compare"] = gr.Button("Compare", variant="primary", elem_id="compare-btn")
            ui["stop"] = gr.Button("Stop", variant="secondary", elem_id="stop-btn", interactive=False)
            ui["share"] = gr.Button("Copy link", variant="secondary", size="sm", elem_id="share-btn")
    ui["examples"] = gr.Dataset(components=[ui["prompt"]], samples=[], label="Examples", elem_id="examples",
                                samples_per_page=8)
    ui["share_link"] = gr.Textbox(label="link to this comparison (copied)", visible=False, elem_id="share-link",
                                  interactive=False, buttons=["copy"])
    ui.update(_settings_panel())
    with gr.Row(equal_height=True, elem_id="panes"):
        for side in SIDES:
            with gr.Column(min_width=320):
                ui[f"{side}_card"] = gr.Markdown(elem_id=f"{side}-card")
                ui[f"{side}_stats"] = gr.Markdown(elem_id=f"{side}-stats", elem_classes=["pane-strip"])
                ui[f"{side}_text"] = gr.Textbox(label=side, lines=12, max_lines=12, interactive=False,
                                                autoscroll=True, elem_id=f"{side}-text")
    gr.Markdown(HOW_MEASURED, elem_id="how-measured")
    ui.update(vote_panel())
    with gr.Accordion("Raw live stats (JSON) and comparison id", open=False):
        ui["stats_json"] = gr.JSON(label="stats", elem_id="stats-json")
        ui["comparison_id"] = gr.Textbox(label="comparison id", interactive=False, elem_id="comparison-id")
    return ui


def _settings_panel() -> dict:
    with gr.Accordion("Decoding settings (the same for both models)", open=False):
        with gr.Row():
            max_new = gr.Slider(1, 1024, value=128, step=1, label="max new tokens")
            fixed = gr.Checkbox(False, label="fixed length (min = max new tokens), for speed comparisons")
            seed = gr.Number(0, precision=0, label="seed")
        with gr.Row():
            sample = gr.Checkbox(False, label="sample (off = greedy)")
            temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p")
            top_k = gr.Slider(0, 200, value=0, step=1, label="top-k (0 = off)")
            penalty = gr.Slider(1.0, 2.0, value=1.2, step=0.05, label="repetition penalty")
    return {"max_new_tokens": max_new, "do_sample": sample, "temperature": temperature, "top_p": top_p,
            "top_k": top_k, "repetition_penalty": penalty, "seed": seed, "fixed_length": fixed}


RANDOM_LABEL = "🎲 Random pair, blind (drawn at each Compare)"

RACE_CHOICES = [("fair: each model alone, one clock", "auto"), ("both at once: contention", "shared")]

SETTING_NAMES = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty",
                 "seed", "fixed_length")


def _wire(demo: gr.Blocks, service: CompareService, ui: dict) -> None:
    load_outputs = [ui["left_card"], ui["right_card"], ui["left_text"], ui["right_text"], ui["preset_info"]]
    switch_outputs = load_outputs + [ui["preset"], ui["examples"], ui["repetition_penalty"]]
    value_outputs = [ui[name] for name in share.VALUE_NAMES]
    demo.load(service.open_page, inputs=None, outputs=switch_outputs[:-1] + value_outputs, api_visibility="private")
    ui["preset"].select(service.switch, inputs=[ui["preset"]], outputs=switch_outputs, api_visibility="private")
    ui["examples"].click(lambda sample: sample[0], inputs=[ui["examples"]], outputs=[ui["prompt"]],
                         api_visibility="private", queue=False)
    ui["share"].click(None, inputs=[ui["preset"], *value_outputs], outputs=[ui["share_link"]], js=share.SHARE_JS)
    ui["share_link"].change(lambda link: gr.Textbox(visible=bool(link)), inputs=[ui["share_link"]],
                            outputs=[ui["share_link"]], api_visibility="private", queue=False)
    if service.free_entry:
        ui["custom_load"].click(service.load_custom, inputs=[ui["custom_left"], ui["custom_right"]],
                                outputs=load_outputs + [ui["preset"]], api_name="load_custom")
    inputs = [ui["prompt"], *(ui[name] for name in SETTING_NAMES), ui["preset"], ui["blind"], ui["race"]]
    outputs = [ui["left_text"], ui["right_text"], ui["left_stats"], ui["right_stats"], ui["stats_json"],
               ui["comparison_id"]]
    ui["compare"].click(None, js=SHOW_PANES_JS)
    ui["compare"].click(service.pane_headers, inputs=[ui["preset"], ui["blind"]], outputs=load_outputs[:4] + [ui["reveal"]],
                        api_visibility="private", queue=False)
    ui["compare"].click(ReviewService.fresh_form, inputs=[ui["blind"], ui["preset"]],
                        outputs=[ui["vote"], ui["tags"], ui["note"], ui["vote_tally"]], api_visibility="private",
                        queue=False)
    ui["compare"].click(lambda: gr.Button(interactive=True, variant="stop"), outputs=[ui["stop"]],
                        api_visibility="private", queue=False)
    compare = ui["compare"].click(service.compare, inputs=inputs, outputs=outputs, api_name="compare",
                                  concurrency_id="generation", concurrency_limit=1, show_progress="minimal",
                                  validator=service.validate, time_limit=int(service.limits.max_time_s) + 30)
    compare.then(lambda: gr.Button(interactive=False, variant="secondary"), outputs=[ui["stop"]],
                 api_visibility="private", queue=False)
    ui["stop"].click(service.stop, inputs=None, outputs=None, cancels=[compare], api_name="stop", queue=False)


def _wire_votes(reviews: ReviewService, ui: dict) -> None:
    pane_outputs = [ui["left_card"], ui["right_card"], ui["left_text"], ui["right_text"]]
    ui["vote_btn"].click(reviews.vote, inputs=[ui["comparison_id"], ui["vote"], ui["tags"], ui["note"]],
                         outputs=[ui["reveal"], ui["vote_tally"]], api_name="vote").then(reviews.reveal_panes, inputs=[ui["comparison_id"]], outputs=pane_outputs,
                                               api_visibility="private")
