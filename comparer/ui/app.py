"""Assemble pool, service and Blocks; preload the first pair so the first visitor does not wait."""

from __future__ import annotations

import os
from types import SimpleNamespace

import gradio as gr

from comparer.pool import ModelPool
from comparer.models.presets import load_presets
from comparer.ui.blocks import CSS, build_demo
from comparer.reviews.store import ReviewStore
from comparer.reviews.sync import start_sync_from_env
from comparer.ui import zerogpu
from comparer.ui.access import Access, gradio_auth, is_public
from comparer.ui.handlers import CompareService, Limits
from comparer.ui.review import ReviewService
from comparer.ui.scaling import ScalingService


def create_app(preset: str = "offline", presets: str = "", device: str | None = None,
               random_weights: bool = False, preload: bool = True,
               dtype: str | None = None, engine: str = "auto", db_path=None, limits: Limits | None = None,
               free_entry: bool = False, live_sweep: bool | None = None) -> gr.Blocks:
    """``live_sweep`` None: open unless the deployment is public (a Space, or COMPARER_PUBLIC=1) and the
    operator has not set COMPARER_LIVE_SWEEP=1."""
    names = _preset_names(preset, presets)
    pool = ModelPool(device, random_weights, dtype, engine, defer_engines=zerogpu.wanted())
    if preload:
        pool.pair(preset)
    store = ReviewStore(db_path)
    store.mark_interrupted()  # no comparison of this process runs yet
    start_sync_from_env(store)
    service = CompareService(pool, names, store, limits, free_entry, gpu_stream=zerogpu.install(pool))
    scaling = ScalingService(pool, live_sweep=live_sweep if live_sweep is not None else _live_sweep_open())
    demo = build_demo(service, scaling, ReviewService(store, access=Access.from_env()), preset)
    demo.comparer = SimpleNamespace(pool=pool, service=service, store=store)  # for operators and tests
    return demo


def _live_sweep_open() -> bool:
    return not is_public() or os.environ.get("COMPARER_LIVE_SWEEP") == "1"


def launch_kwargs() -> dict:
    """What every launch of the app passes to Gradio (app.py and the tests): the request guard (headers,
    bounded bodies, no uploads) and no file uploads (the Blocks clean their temp cache hourly)."""
    from starlette.middleware import Middleware

    from comparer.ui.guard import Guard

    return {"app_kwargs": {"middleware": [Middleware(Guard)]}, "max_file_size": "1kb", "auth": gradio_auth(),
            "css": CSS}


def _preset_names(first: str, wanted: str) -> list[str]:
    known = list(load_presets())
    names = [n.strip() for n in wanted.split(",") if n.strip()] or known
    unknown = [n for n in names + [first] if n not in known]
    if unknown:
        raise SystemExit(f"Unknown preset(s) {unknown}; known presets: {', '.join(known)}.")
    return [first] + [n for n in names if n != first]
