"""Exports of the review store: CSV and JSONL (one row per comparison, latest vote), the JSON input format
of PAIR's LLM Comparator (one pair of models, score > 0 when model A is preferred) and the leaderboard
the votes give (comparer/reviews/leaderboard.py) as CSV, one row per model."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

from comparer.reviews import leaderboard

FORMATS = ("csv", "jsonl", "llm-comparator", "leaderboard-csv")
CSV_COLUMNS = ("id", "created_at", "preset", "blind", "prompt", "left_model", "right_model", "left_output",
               "right_output", "vote", "tags", "note", "left_ttft_s", "right_ttft_s", "left_decode_tok_per_s",
               "right_decode_tok_per_s", "settings", "app_version")
VOTE_SCORE_FOR_LEFT = {"left": 1.0, "right": -1.0, "tie": 0.0, "both_bad": 0.0}


def flat_row(item: dict) -> dict:
    latest = item["votes"][-1] if item["votes"] else {}
    stats = {side: item[f"{side}_stats"] or {} for side in ("left", "right")}
    return {"id": item["id"], "created_at": item["created_at"], "preset": item["preset"], "blind": item["blind"],
            "prompt": item["prompt"], "left_model": item["left_model"], "right_model": item["right_model"],
            "left_output": item["left_output"], "right_output": item["right_output"],
            "vote": latest.get("vote"), "tags": latest.get("tags", []), "note": latest.get("note", ""),
            "left_ttft_s": stats["left"].get("ttft_s"), "right_ttft_s": stats["right"].get("ttft_s"),
            "left_decode_tok_per_s": stats["left"].get("decode_tok_per_s"),
            "right_decode_tok_per_s": stats["right"].get("decode_tok_per_s"),
            "settings": item["settings"], "app_version": item["app_version"]}


def to_csv(items: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for item in items:
        row = flat_row(item)
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return out.getvalue()


def to_jsonl(items: list[dict]) -> str:
    """Full records (cards, stats, every vote) one per line."""
    return "".join(json.dumps(item, default=str) + "\n" for item in items)


def to_llm_comparator(items: list[dict]) -> str:
    """LLM Comparator compares two fixed models A and B: take the most frequent pair, orient each
    example so A is always the same model, and score +1 / -1 / 0 for A better / B better / tie."""
    voted = [i for i in items if i["votes"]]
    if not voted:
        return json.dumps({"metadata": {"source_path": "comparer", "custom_fields_schema": []},
                           "models": [], "examples": []})
    (model_a, model_b), _ = Counter(tuple(sorted((i["left_model"], i["right_model"]))) for i in voted).most_common(1)[0]
    examples = [_example(i, model_a) for i in voted if {i["left_model"], i["right_model"]} == {model_a, model_b}]
    return json.dumps({"metadata": {"source_path": "comparer reviews",
                                    "custom_fields_schema": [{"name": "preset", "type": "category"},
                                                             {"name": "note", "type": "text"}]},
                       "models": [{"name": model_a}, {"name": model_b}], "examples": examples}, indent=1)


def _example(item: dict, model_a: str) -> dict:
    latest = item["votes"][-1]
    flipped = item["left_model"] != model_a
    a_side, b_side = ("right", "left") if flipped else ("left", "right")
    score = VOTE_SCORE_FOR_LEFT[latest["vote"]] * (-1 if flipped else 1)
    return {"input_text": item["prompt"], "tags": latest["tags"] + (["both bad"] if latest["vote"] == "both_bad" else []),
            "output_text_a": item[f"{a_side}_output"], "output_text_b": item[f"{b_side}_output"], "score": score,
            "individual_rater_scores": [{"is_flipped": flipped, "score": score, "rationale": latest["note"]}],
            "custom_fields": {"preset": item["preset"] or "", "note": latest["note"]}}


def export(items: list[dict], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return {"csv": to_csv, "jsonl": to_jsonl, "llm-comparator": to_llm_comparator,
            "leaderboard-csv": to_leaderboard_csv}[fmt](items)


def to_leaderboard_csv(items: list[dict]) -> str:
    """Bradley-Terry ratings with 95 % bootstrap intervals from each comparison's latest vote."""
    return leaderboard.to_csv(leaderboard.from_comparisons(items))
