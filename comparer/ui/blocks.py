"""The Blocks layout: build components and wire events to CompareService. No logic here."""

from __future__ import annotations

import gradio as gr

from comparer.models.presets import SIDES
from comparer.models.presets import RANDOM, load_presets
from comparer.prompts import load_prompts
from comparer.ui.handlers import CompareService
from comparer.ui.review import ReviewService, review_tab, vote_panel
from comparer.ui.scaling import ScalingService, scaling_tab

INTRO = """# comparer — Mamba vs Transformer, side by side
Both models get the same prompt, and the race shows **each model's own pace**: on one device they run
one after the other, each with the device to itself, and both panes play on one clock from one start,
every token at the moment its model made it (on two GPUs, one model per GPU, both at once). Each strip
says how its figures were made; the **Scaling** tab measures each model across context lengths. Each
card says what actually runs: the architecture comes from the model's config, never from its name."""


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
    presets = load_presets()
    choices = [(presets[n].label, n) for n in service.presets]
    choices += [(RANDOM_LABEL, RANDOM)] if len(service.presets) > 1 else []
    choices += [("Custom pair (below)", "custom")] if service.free_entry else []
    ui = {"preset": gr.Dropdown(choices, value=default_preset,
                                label="Model pair", elem_id="preset")}
    if service.free_entry:
        with gr.Accordion("Custom pair: any two Hub models (free entry enabled by the operator)", open=False):
            with gr.Row():
                ui["custom_left"] = gr.Textbox(label="left model id", placeholder="state-spaces/mamba-130m-hf")
                ui["custom_right"] = gr.Textbox(label="right model id", placeholder="EleutherAI/pythia-160m")
                ui["custom_load"] = gr.Button("Load custom pair")
    ui["preset_info"] = gr.Markdown(elem_id="preset-info")
    ui["prompt"] = gr.Textbox(label="Prompt", lines=4, max_lines=8, elem_id="prompt",
                              placeholder="Type a prompt or pick an example below")
    prompts = load_prompts()
    gr.Examples([[p.text] for p in prompts], inputs=[ui["prompt"]], example_labels=[p.title for p in prompts])
    ui.update(_settings_panel())
    with gr.Row():
        ui["compare"] = gr.Button("Compare", variant="primary", elem_id="compare-btn", scale=3)
        ui["stop"] = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=3)
        ui["blind"] = gr.Checkbox(False, label="blind (shuffle sides, hide names until you vote)",
                                  elem_id="blind", scale=2)
        ui["race"] = gr.Radio(RACE_CHOICES, value="auto", label="race", elem_id="race", scale=3)
    with gr.Row(equal_height=False):
        for side in SIDES:
            with gr.Column():
                ui[f"{side}_stats"] = gr.Markdown(label=f"{side} stats", elem_id=f"{side}-stats")
                ui[f"{side}_text"] = gr.Textbox(label=side, lines=9, max_lines=30, interactive=False,
                                                elem_id=f"{side}-text")
                ui[f"{side}_card"] = gr.Markdown(elem_id=f"{side}-card")
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
            penalty = gr.Slider(1.0, 2.0, value=1.0, step=0.05, label="repetition penalty")
    return {"max_new_tokens": max_new, "do_sample": sample, "temperature": temperature, "top_p": top_p,
            "top_k": top_k, "repetition_penalty": penalty, "seed": seed, "fixed_length": fixed}


RANDOM_LABEL = "🎲 Random pair, blind (drawn at each Compare)"

RACE_CHOICES = [("fair: each model alone, one clock", "auto"), ("both at once: contention", "shared")]

SETTING_NAMES = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty",
                 "seed", "fixed_length")


def _wire(demo: gr.Blocks, service: CompareService, ui: dict) -> None:
    load_outputs = [ui["left_card"], ui["right_card"], ui["left_text"], ui["right_text"], ui["preset_info"]]
    demo.load(service.load, inputs=[ui["preset"]], outputs=load_outputs, api_visibility="private")
    ui["preset"].change(service.load, inputs=[ui["preset"]], outputs=load_outputs, api_visibility="private")
    if service.free_entry:
        ui["custom_load"].click(service.load_custom, inputs=[ui["custom_left"], ui["custom_right"]],
                                outputs=load_outputs + [ui["preset"]], api_name="load_custom")
    inputs = [ui["prompt"], *(ui[name] for name in SETTING_NAMES), ui["preset"], ui["blind"], ui["race"]]
    outputs = [ui["left_text"], ui["right_text"], ui["left_stats"], ui["right_stats"], ui["stats_json"],
               ui["comparison_id"]]
    ui["compare"].click(service.pane_headers, inputs=[ui["preset"], ui["blind"]], outputs=load_outputs[:4] + [ui["reveal"]],
                        api_visibility="private", queue=False)
    ui["compare"].click(ReviewService.fresh_form, inputs=[ui["blind"], ui["preset"]],
                        outputs=[ui["vote"], ui["tags"], ui["note"], ui["vote_tally"]], api_visibility="private",
                        queue=False)
    compare = ui["compare"].click(service.compare, inputs=inputs, outputs=outputs, api_name="compare",
                                  concurrency_id="generation", concurrency_limit=1, show_progress="minimal",
                                  validator=service.validate, time_limit=int(service.limits.max_time_s) + 30)
    ui["stop"].click(service.stop, inputs=None, outputs=None, cancels=[compare], api_name="stop", queue=False)


def _wire_votes(reviews: ReviewService, ui: dict) -> None:
    pane_outputs = [ui["left_card"], ui["right_card"], ui["left_text"], ui["right_text"]]
    ui["vote_btn"].click(reviews.vote, inputs=[ui["comparison_id"], ui["vote"], ui["tags"], ui["note"]],
                         outputs=[ui["reveal"], ui["vote_tally"]], api_name="vote").then(reviews.reveal_panes, inputs=[ui["comparison_id"]], outputs=pane_outputs,
                                               api_visibility="private")
