"""What the Compare tab shows before anything runs: a pair's examples and settings, its card line, which
pairs can run here, and links that reopen a comparison (the browser tests drive the same code)."""

import pytest

from comparer.models.presets import load_presets
from comparer.pool import ModelPool
from comparer.prompts import load_prompts
from comparer.ui import share


def test_base_model_pairs_get_story_continuations_only_and_a_penalty_that_stops_loops():
    presets = load_presets()
    for name in ("offline", "small", "paper"):
        assert presets[name].prompt_kinds == ("story",) and presets[name].defaults["repetition_penalty"] > 1.0
    stories = load_prompts(presets["offline"].prompt_kinds)
    assert len(stories) >= 4 and all(p.kind == "story" for p in stories)
    assert "Logistic regression in Python" not in [p.title for p in stories]
    assert "Logistic regression in Python" in [p.title for p in load_prompts(presets["seed"].prompt_kinds)]


def test_a_pair_too_large_for_a_cpu_is_refused_there_at_once_and_offered_on_a_gpu():
    presets = load_presets()
    cpu = ModelPool("cpu", random_weights=True)
    assert "needs a GPU" in cpu.why_not(presets["paper"])
    assert cpu.why_not(presets["small"]) is None  # random weights build from the bundled configs
    assert cpu.why_not(presets["offline"]) is None
    assert ModelPool("cuda:0", random_weights=True).why_not(presets["paper"]) is None


def test_the_card_line_names_family_size_data_perplexity_and_what_runs(offline_pair):
    from comparer.ui.cards import card_line, card_markdown

    line = card_line(offline_pair["left"].card)
    assert "**SSM**" in line and "6.7M parameters" in line and "test perplexity **84.4**" in line
    assert "runs comparer fast" in line or "runs transformers" in line
    full = card_markdown(offline_pair["right"].card)
    assert "| property | value |" in full and "| held-out perplexity | 56.2 |" in full


def test_a_link_sets_what_it_names_and_names_what_it_cannot_use():
    values, problems = share.parse({"preset": "offline", "prompt": "Hi <b>there</b>", "seed": "7", "top_p": "0.9",
                                    "do_sample": "1", "race": "shared", "blind": "0", "utm_source": "x"}, ["offline"])
    assert values == {"preset": "offline", "prompt": "Hi <b>there</b>", "seed": 7, "top_p": 0.9, "do_sample": True,
                      "race": "shared", "blind": False} and problems == []
    values, problems = share.parse({"preset": "paper", "top_k": "lots", "prompt": "ok"}, ["offline"])
    assert values == {"prompt": "ok"}
    assert any("preset" in p and "offline" in p for p in problems) and any("top_k" in p for p in problems)


@pytest.mark.parametrize("query", [{"temperature": "0"}, {"max_new_tokens": "999999"}, {"seed": "-1"}])
def test_out_of_range_settings_in_a_link_are_all_dropped_with_the_reason(query):
    values, problems = share.parse({**query, "prompt": "ok"}, ["offline"])
    assert values == {"prompt": "ok"} and len(problems) == 1 and list(query)[0] in problems[0]
