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
