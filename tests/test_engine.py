import threading
import time

import pytest
import torch

from comparer.settings import GenerationSettings, SettingsError

PROMPT = "Maia gets ready for her next adventure. She finds a toy boat and"


def _ids(model):
    return model.tokenizer(PROMPT)["input_ids"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_offline_models_load_through_from_pretrained_and_are_labelled_untrained(offline_pair, side):
    card = offline_pair[side].card
    assert card.weights == "random (untrained)"
    assert card.family == ("SSM" if side == "left" else "Transformer")


@pytest.mark.parametrize("side", ["left", "right"])
def test_streamed_tokens_equal_generate_with_greedy_decoding(offline_pair, side):
    model = offline_pair[side]
    streamed = []
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=24, fixed_length=True),
                                   on_token=lambda ev: streamed.append(ev.token_id))
    with torch.inference_mode():
        ids = torch.tensor([_ids(model)])
        reference = model.engine.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                max_new_tokens=24, min_new_tokens=24, pad_token_id=0)
    assert streamed == result.token_ids == reference[0, ids.shape[1]:].tolist()


def test_token_timestamps_are_increasing_and_after_start(offline_pair):
    model = offline_pair["right"]
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=10, fixed_length=True))
    assert len(result.token_times_s) == 10
    assert result.t_start_s < result.token_times_s[0]
    assert result.token_times_s == sorted(result.token_times_s)


def test_seeded_sampling_reproduces_a_pane_and_differs_across_seeds(offline_pair):
    model = offline_pair["left"]

    def sample(seed):
        s = GenerationSettings(max_new_tokens=20, do_sample=True, temperature=1.5, top_k=50, top_p=0.95,
                               seed=seed, fixed_length=True)
        return model.engine.generate(_ids(model), s).token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_stop_event_ends_a_long_generation_early(offline_pair):
    model, stop = offline_pair["right"], threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    t0 = time.perf_counter()
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=4096, fixed_length=True),
                                   stop=stop)
    assert time.perf_counter() - t0 < 1.3
    assert result.stopped_early and 0 < len(result.token_ids) < 4096


@pytest.mark.parametrize("bad", [dict(max_new_tokens=0), dict(max_new_tokens=1.5), dict(temperature=0),
                                 dict(top_p=1.5), dict(top_k=-1), dict(repetition_penalty=9),
                                 dict(max_new_tokens="ten"), dict(seed=True)])
def test_out_of_range_settings_are_rejected_with_the_field_name(bad):
    with pytest.raises(SettingsError, match=next(iter(bad))):
        GenerationSettings(**bad)


def test_random_weight_mode_builds_the_exact_config_and_streams_with_byte_tokens():
    from comparer.loading import ModelSpec, load_model
    from comparer.pair import PairRun

    spec = ModelSpec("state-spaces/mamba-130m-hf", config_name="mamba-130m").with_random_weights()
    model = load_model(spec, "cpu")
    assert model.card.n_params == 129_135_360 and model.card.weights == "random (untrained)"
    run = PairRun({"left": model, "right": model}, "moon", GenerationSettings(max_new_tokens=3, fixed_length=True))
    for panes in run:
        pass
    assert all(len(p.token_ids) == 3 and p.status == "done" for p in panes.values())
