"""Where comparer's files live: the shipped assets beside the package, and the data a running app writes.

One module, so that a moved folder is one edit and no module climbs ``__file__`` to find its neighbours.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = ROOT / "assets"
CONFIGS_DIR = ASSETS_DIR / "configs"  # bundled model configs, for random-weight models
PRESETS_FILE = ASSETS_DIR / "presets.json"
RECORDS_DIR = ASSETS_DIR / "benchmarks" / "records"  # benchmark records the Scaling tab reads
LOGS_DIR = ASSETS_DIR / "benchmarks" / "logs"  # test logs and tuning sweeps, for people
PROMPTS_DIR = ROOT / "prompts"
DATA_DIR = Path("data")  # what a running app writes (reviews, live sweeps), relative to where it runs
