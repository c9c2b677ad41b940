"""Write a ready Hugging Face Space folder: ``python -m comparer.space build/space``.

Why a separate folder: ZeroGPU accepts only PyTorch 2.8.0, 2.9.1, 2.10.0 or 2.11.0 and Python 3.10 or
3.12 (a Space configured otherwise does not start), while this repository pins torch 2.13.0 so that a
fresh ``pip install -r requirements.txt`` here and in CI takes the CPU build from the local disk instead
of downloading a CUDA build. No single requirements file satisfies both, so the Space gets its own front
matter and requirements, written from this repository's pins, beside a copy of the app, the demo pair
and the benchmark records. The rules it follows are checked by tests/test_space.py.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from comparer.bench.ceilings import pins
from comparer.paths import ROOT

SPACE_PYTHON = "3.12"  # ZeroGPU: 3.12.12 or 3.10.13
SPACE_TORCH = "2.11.0"  # ZeroGPU: 2.8.0, 2.9.1, 2.10.0 or 2.11.0; 2.11.0 is what the H200 figures ran on
# copied into the Space; everything else (tests, scripts, data, caches) stays here
COPIED = ["app.py", "comparer", "prompts", "assets/presets.json", "assets/configs", "assets/models", "assets/benchmarks/records",
          "assets/demo/SOURCES.md", "LICENSE"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# the Space installs gradio from sdk_version and has spaces preinstalled (ZeroGPU)
NOT_IN_SPACE = {"torch", "gradio", "ninja", "pytest"}  # ninja: the CPU scan only; pytest: tests
DEFAULT_PRESETS = "paper,small,offline"  # what a ZeroGPU Space offers: the headline pair first


def front_matter(gradio_version: str, presets: str) -> str:
    """The Space's README header: Gradio SDK at the repository's pin, Python for ZeroGPU, the models it may
    load (so the Hub links them), the allowlist as the default presets."""
    from comparer.models.presets import get_preset

    models = []
    for name in presets.split(","):
        preset = get_preset(name)
        models += [s.model_id for s in (preset.left, preset.right) if not s.local_dir and s.model_id not in models]
    lines = ["---", "title: comparer — Mamba vs Transformer", "emoji: 🐍", "colorFrom: red", "colorTo: blue",
             "sdk: gradio", f"sdk_version: {gradio_version}", f'python_version: "{SPACE_PYTHON}"', "app_file: app.py",
             "short_description: Mamba vs Transformer side by side, measured honestly",
             "license: apache-2.0", "hf_oauth: true", "models:", *[f"  - {m}" for m in models], "pinned: false", "---"]
    return "\n".join(lines) + "\n"


def requirements(repo_pins: dict[str, str]) -> str:
    lines = [f"torch=={SPACE_TORCH}  # ZeroGPU's versions; this repository's own pin is {repo_pins.get('torch')}"]
    lines += [f"{name}=={version}" for name, version in repo_pins.items() if name not in NOT_IN_SPACE]
    return "\n".join(lines) + "\n"


SPACE_README = """
# comparer on ZeroGPU

A Mamba and a Transformer on the same prompt, streaming side by side with measured speed and memory.
Built from the comparer repository by `python -m comparer.space`; its README has the full documentation.
Mamba runs on comparer's Triton kernels here (no mamba-ssm on ZeroGPU), the Transformer on its Triton engine:
both sides on the same kind of path. Figures in the Scaling tab that come from records were measured on an
NVIDIA H200, as each plot says, not on this Space's GPU.
"""


def build(out: Path, presets: str = DEFAULT_PRESETS) -> Path:
    """Write the Space into ``out`` (emptied first) and return it."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIPPED)
        elif source.exists():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / name)
    repo_pins = pins()
    (out / "README.md").write_text(front_matter(repo_pins["gradio"], presets) + SPACE_README)
    (out / "requirements.txt").write_text(requirements(repo_pins))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m comparer.space", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write (emptied first)")
    parser.add_argument("--presets", default=DEFAULT_PRESETS, help="presets the Space may load (front matter models)")
    args = parser.parse_args(argv)
    out = build(Path(args.out), args.presets)
    print(f"wrote {out}: upload it as a Gradio Space with ZeroGPU hardware (README: 'On a Hugging Face Space')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
