"""Shared fixtures: tiny real models built here (no network), and the offline pair."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def offline_dirs(tmp_path_factory):
    from comparer.offline import ensure_offline_pair

    return ensure_offline_pair(tmp_path_factory.mktemp("offline-models"))


@pytest.fixture(scope="session")
def offline_pair(offline_dirs):
    from comparer.loading import ModelSpec, load_model

    return {side: load_model(ModelSpec(name, local_dir=str(path), untrained=True), "cpu")
            for side, (name, path) in zip(("left", "right"), offline_dirs.items())}


@pytest.fixture(scope="module")
def app_url(offline_dirs, tmp_path_factory):
    """The app launched on a free loopback port with the offline pair and a fresh review database."""
    from comparer.ui.app import create_app
    from tests.test_app_api import _free_port

    cache_dir = next(iter(offline_dirs.values())).parent
    db = tmp_path_factory.mktemp("db") / "reviews.sqlite"
    demo = create_app("offline", "offline,small", "cpu", offline_cache_dir=cache_dir, db_path=db)
    port = _free_port()
    demo.queue(max_size=16).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                   ssr_mode=False, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
