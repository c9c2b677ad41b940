"""Assemble pool, service and Blocks; preload the first pair so the first visitor does not wait."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from comparer.pool import ModelPool
from comparer.presets import load_presets
from comparer.ui.blocks import build_demo
from comparer.reviews.store import ReviewStore
from comparer.reviews.sync import start_sync_from_env
from comparer.ui import zerogpu
from comparer.ui.handlers import CompareService, Limits
from comparer.ui.review import ReviewService
from comparer.ui.scaling import ScalingService


def create_app(preset: str = "offline", presets: str = "", device: str | None = None,
               random_weights: bool = False, preload: bool = True,
               dtype: str | None = None, engine: str = "auto", db_path=None, limits: Limits | None = None,
               free_entry: bool = False) -> gr.Blocks:
    names = _preset_names(preset, presets)
    pool = ModelPool(device, random_weights, dtype, engine, defer_engines=zerogpu.wanted())
    if preload:
        pool.pair(preset)
    store = ReviewStore(db_path)
    store.mark_interrupted()  # no comparison of this process runs yet
    start_sync_from_env(store)
    service = CompareService(pool, names, store, limits, free_entry, gpu_stream=zerogpu.install(pool))
    demo = build_demo(service, ScalingService(pool), ReviewService(store), preset)
    demo.comparer = SimpleNamespace(pool=pool, service=service, store=store)  # for operators and tests
    return demo


def launch_kwargs() -> dict:
    """What every launch of the app passes to Gradio (app.py and the tests): the request guard (headers,
    bounded bodies, no uploads) and no file uploads (the Blocks clean their temp cache hourly)."""
    from starlette.middleware import Middleware

    from comparer.ui.guard import Guard

    return {"app_kwargs": {"middleware": [Middleware(Guard)]}, "max_file_size": "1kb"}


def _preset_names(first: str, wanted: str) -> list[str]:
    known = list(load_presets())
    names = [n.strip() for n in wanted.split(",") if n.strip()] or known
    unknown = [n for n in names + [first] if n not in known]
    if unknown:
        raise SystemExit(f"Unknown preset(s) {unknown}; known presets: {', '.join(known)}.")
    return [first] + [n for n in names if n != first]
