"""The Space folder ``python -m comparer.space`` writes, checked against ZeroGPU's documented rules
(hub-docs docs/hub/spaces-zerogpu.md, 2026), so the configuration cannot drift from them: a Space
configured otherwise does not start."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from comparer import space

# the rules, as the documentation states them (not read from the code under test)
ZEROGPU_TORCH = {"2.8.0", "2.9.1", "2.10.0", "2.11.0"}
ZEROGPU_PYTHON = {"3.10", "3.10.13", "3.12", "3.12.12"}
ZEROGPU_DEFAULT_DURATION_S = 60  # what a task gets unless it asks; a callable may ask per call


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return space.build(tmp_path_factory.mktemp("space") / "space")


def _front_matter(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n"), "a Space README starts with its YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def _requirements(folder: Path) -> dict[str, str]:
    return space.pins(folder / "requirements.txt")


def test_front_matter_is_a_gradio_space_zerogpu_accepts(built):
    meta = _front_matter(built)
    assert meta["sdk"] == "gradio"
    assert str(meta["python_version"]) in ZEROGPU_PYTHON
    assert meta["sdk_version"] == space.pins()["gradio"], "the SDK is the Gradio this repository is tested with"
    assert (built / meta["app_file"]).is_file()
    assert "hardware" not in meta and "suggested_hardware" not in meta  # ZeroGPU is chosen in the settings
    assert len(meta["short_description"]) <= 60
    assert all("/" in model for model in meta["models"])


def test_requirements_pin_a_zerogpu_torch_and_leave_gradio_to_the_sdk(built):
    reqs = _requirements(built)
    assert reqs["torch"] in ZEROGPU_TORCH
    assert "gradio" not in reqs, "the SDK installs Gradio at sdk_version; a second pin could differ"
    lines = (built / "requirements.txt").read_text().splitlines()
    assert not [line for line in lines if line.strip() and "==" not in line], "every requirement pinned"
    repo = space.pins()
    assert all(reqs[name] == repo[name] for name in reqs if name != "torch"), "the rest as tested here"


def test_the_repository_itself_stays_on_the_local_torch(built):
    """Here and in CI a fresh install must take torch 2.13.0 from the local disk: an exact pin."""
    assert space.pins()["torch"] == "2.13.0"


def test_spaces_is_imported_before_anything_imports_torch(built, tmp_path):
    """ZeroGPU patches CUDA when ``spaces`` is imported: app.py's top level imports no torch, and main()
    imports spaces before its first import of the app."""
    fake = tmp_path / "fake"
    (fake / "spaces").mkdir(parents=True)
    (fake / "spaces" / "__init__.py").write_text("import sys\nTORCH_FIRST = 'torch' in sys.modules\n")
    probe = ("import sys, app; app._import_spaces_first(); import spaces; "
             "print('torch first' if spaces.TORCH_FIRST else 'spaces first')")
    done = subprocess.run([sys.executable, "-c", probe], cwd=built, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{built}"})
    assert done.stdout.strip() == "spaces first", done.stderr[-2000:]
    main = next(node for node in ast.parse((built / "app.py").read_text()).body
                if isinstance(node, ast.FunctionDef) and node.name == "main")
    calls = [i for i, stmt in enumerate(main.body) if "_import_spaces_first" in ast.unparse(stmt)]
    imports = [i for i, stmt in enumerate(main.body) if isinstance(stmt, (ast.Import, ast.ImportFrom))]
    assert calls and imports and calls[0] < imports[0]


def test_the_gpu_task_asks_for_a_duration_from_its_own_inputs(monkeypatch):
    """@spaces.GPU gets a callable of the task's arguments (not a fixed 60 s), returning whole seconds."""
    pytest.importorskip("spaces")
    import spaces

    from comparer.ui import zerogpu

    seen = {}
    monkeypatch.setattr(spaces, "GPU", lambda **kwargs: seen.update(kwargs) or (lambda fn: fn))
    monkeypatch.setenv("COMPARER_ZEROGPU", "1")
    assert zerogpu.install(object()) is zerogpu.stream_outputs
    duration = seen["duration"]
    assert callable(duration)
    args = ("Once upon a time", {"max_new_tokens": 256}, "paper", False, False, "auto")
    assert isinstance(duration(*args), int) and duration(*args) != ZEROGPU_DEFAULT_DURATION_S


def test_the_space_folder_holds_what_the_app_needs_and_nothing_else(built):
    assert (built / "assets" / "models" / "demo-mamba" / "model.safetensors").exists()
    assert (built / "comparer" / "kernels" / "mamba_scan.py").exists() and (built / "assets" / "presets.json").exists()
    assert (built / "comparer" / "kernels" / "cpu_scan.c").exists()  # the CPU scan is built from it on the Space
    assert not (built / "tests").exists() and not (built / "data").exists()
    assert not list(built.rglob("__pycache__"))
