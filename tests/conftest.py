"""Shared fixtures: the shipped demo pair (assets/models, no network) and the app serving it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def offline_dirs():
    """model id -> folder of the offline preset's two trained models."""
    from comparer.models.presets import get_preset

    preset = get_preset("offline")
    return {spec.model_id: spec.local_dir for spec in (preset.left, preset.right)}


@pytest.fixture(scope="session")
def offline_pair(offline_dirs):
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    return {side: load_model(ModelSpec(name, local_dir=path), "cpu")
            for side, (name, path) in zip(("left", "right"), offline_dirs.items())}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app launched on a free loopback port with the offline pair and a fresh review database."""
    from comparer.ui.app import create_app, launch_kwargs
    from tests.test_app_api import _free_port

    db = tmp_path_factory.mktemp("db") / "reviews.sqlite"
    demo = create_app("offline", "offline,small", "cpu", db_path=db)
    port = _free_port()
    demo.queue(max_size=16).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                   ssr_mode=False, quiet=True, **launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()
