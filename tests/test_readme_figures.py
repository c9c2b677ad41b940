"""Every figure the README quotes from a benchmark record equals that record, at the precision shown
(issue 21): a re-measured record or an edited README cannot drift apart silently."""

import re
from pathlib import Path

import pytest

from comparer.bench.records import BenchRecord
from comparer.paths import RECORDS_DIR

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
MAMBA, PYTHIA = "state-spaces/mamba-2.8b-hf", "EleutherAI/pythia-6.9b"
FAST = {MAMBA: "h200-paper-fast-gemv.json", PYTHIA: "h200-paper-fast-gemv.json"}
GENERATE = {MAMBA: "h200-paper-random.json", PYTHIA: "h200-paper-random.json"}
GIB = 2**30

# table row label -> (records by model, metric, contexts)
ROWS = {
    "decode tok/s at 512 / 32K, fast engines (`auto`)": (FAST, "decode", (512, 32768)),
    "TTFT s at 512 / 32K, fast engines": (FAST, "ttft", (512, 32768)),
    "decode tok/s at 512 / 32K, transformers `generate`": (GENERATE, "decode", (512, 32768)),
    "peak GiB at 128K, transformers `generate`": (GENERATE, "peak", (131072,)),
}


def _point(record_name: str, model_id: str, context: int):
    run = next(m for m in BenchRecord.load(RECORDS_DIR / record_name).models if m.model_id == model_id)
    return next(p for p in run.points if p.context_tokens == context)


def _value(point, metric: str) -> float:
    if metric == "decode":
        return point.decode_tok_per_s.median
    if metric == "ttft":
        return point.ttft_s.median
    return point.peak_allocated_bytes / GIB


def _same(shown: str, value: float) -> bool:
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return f"{value:.{decimals}f}" == shown


def _row(label: str) -> list[str]:
    line = next(line for line in README.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


@pytest.mark.parametrize("label", ROWS)
def test_the_headline_table_equals_its_records(label):
    records, metric, contexts = ROWS[label]
    for cell, model_id in zip(_row(label), (MAMBA, PYTHIA)):
        shown = [s.strip() for s in cell.split("/")]
        assert len(shown) == len(contexts)
        for text, context in zip(shown, contexts):
            value = _value(_point(records[model_id], model_id, context), metric)
            assert _same(text, value), (label, model_id, context, text, value)


def test_the_cpu_ttft_sentence_equals_its_record():
    match = re.search(r"Mamba-130M's TTFT \(compiled C scan\) is ([\d.]+) s, Pythia-160M's ([\d.]+) s", README)
    for text, model_id in zip(match.groups(), ("state-spaces/mamba-130m-hf", "EleutherAI/pythia-160m")):
        assert _same(text, _point("cpu-small-auto.json", model_id, 1024).ttft_s.median), (model_id, text)
