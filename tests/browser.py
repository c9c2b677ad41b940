"""What every browser test shares: Debian's Chromium driven by Playwright (no browser download), launched
once per module, and skipped with the reason where Chromium or Playwright is missing."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("COMPARER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not shutil.which(CHROMIUM),
                                    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def launched():
    """Yield a launched Chromium (use inside a module-scoped fixture)."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
