"""The README's gradio_client examples run as written (only the URL points at the test app)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks_using_the_client() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "client" in b]


def test_readme_gradio_client_examples_run_against_the_app(app_url, capsys):
    blocks = _python_blocks_using_the_client()
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        exec(block.replace("http://127.0.0.1:7860/", app_url), namespace)
    assert "ttft_s" in str(namespace["stats"]["left"])
    assert "Vote recorded" in namespace["reveal"]
    assert capsys.readouterr().out.strip()  # the first example prints the two figures
