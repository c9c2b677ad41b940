import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MambaConfig, MambaForCausalLM

from comparer.models.arch import HF_REFERENCE_SCAN, SSM, TRANSFORMER, family_of
from comparer.engines.loaded import load_model
from comparer.models.loading import load_bundled_config
from comparer.models.presets import ModelSpec
from comparer.paths import CONFIGS_DIR


def _save(model_cls, config, path):
    from comparer.models.tokenizers import build_tokenizer

    torch.manual_seed(0)
    model_cls(config).save_pretrained(path)
    build_tokenizer(["a tiny corpus for a tiny tokenizer"], vocab_size=300).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama_named_mamba(tmp_path_factory):
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=128)
    return _save(LlamaForCausalLM, config, tmp_path_factory.mktemp("mamba-gpt-3b-v3"))


@pytest.fixture(scope="module")
def real_mamba(tmp_path_factory):
    config = MambaConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, state_size=8)
    return _save(MambaForCausalLM, config, tmp_path_factory.mktemp("tiny-mamba"))


def test_llama_model_named_mamba_gpt_is_a_transformer_with_a_warning(llama_named_mamba):
    card = load_model(ModelSpec("CobraMamba/mamba-gpt-3b-v3", local_dir=str(llama_named_mamba)), "cpu").card
    assert card.family == TRANSFORMER
    assert card.kv_bytes_per_token > 0 and card.ssm_state_bytes == 0
    assert len(card.warnings) == 1 and "not a Mamba" in card.warnings[0]


def test_mamba_config_model_is_an_ssm_whatever_its_name(real_mamba):
    card = load_model(ModelSpec("some-org/llm-v2", local_dir=str(real_mamba)), "cpu").card
    assert card.family == SSM
    assert card.kv_bytes_per_token == 0 and card.ssm_state_bytes == 2 * 64 * (8 + 4) * 4
    assert card.path.engine == HF_REFERENCE_SCAN  # no CUDA kernels on a CPU
    assert card.kernel_path.startswith("transformers generate, reference scan (reference PyTorch")


def test_card_reports_real_parameter_count_dtype_and_device(real_mamba):
    loaded = load_model(ModelSpec("tiny", local_dir=str(real_mamba)), "cpu")
    assert loaded.card.n_params == sum(p.numel() for p in loaded.engine.model.parameters())
    assert (loaded.card.dtype, loaded.card.device, loaded.card.weights) == ("float32", "cpu", "trained")


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS_DIR.glob("*.json")))
def test_bundled_configs_family_follows_config_not_file_name(name):
    expected = SSM if "mamba" in name else TRANSFORMER
    assert family_of(load_bundled_config(name)) == expected


def test_a_model_goes_on_one_gpu_when_it_fits_and_is_spread_by_accelerate_when_not():
    """Weights counted from an empty model of the config: Pythia-160M and Llama-3-70B in fp16; the
    70B model (141 GB) exceeds 90 % of a 141 GB GPU and is planned by accelerate ("auto"), Pythia
    stays whole on the GPU it was asked for (a spread model loses its CUDA-graph decode), and a
    max_memory cap always asks for the plan."""
    from comparer.models.loading import choose_device_map, weight_bytes

    small = weight_bytes(load_bundled_config("pythia-160m"), torch.float16)
    big = weight_bytes(load_bundled_config("llama-3-70b"), torch.float16)
    assert small == 162_322_944 * 2 and big == 70_553_706_496 * 2
    h200 = 143_771 * 2**20
    assert choose_device_map("cuda:0", small, h200, None) == "cuda:0"
    assert choose_device_map("cuda", big, h200, None) == "auto"
    assert choose_device_map("cuda", small, h200, {0: "1GiB", 1: "1GiB"}) == "auto"


def test_a_stored_card_comes_back_whole_new_or_old(real_mamba):
    """The review store keeps cards as dicts; the reveal after a vote rebuilds them: a current card
    (structured path) and one stored before it (only the text) both render their kernel path."""
    from comparer.models.arch import ArchitectureCard
    from comparer.ui.review import card_markdown_from_dict

    card = load_model(ModelSpec("tiny", local_dir=str(real_mamba)), "cpu").card
    back = ArchitectureCard.from_dict(card.to_dict())
    assert back == card and back.kernel_path == card.kernel_path and back.engine == card.engine
    old = {k: v for k, v in card.to_dict().items() if k not in ("path", "stored_kernel_path")}
    old.update(kernel_path="reference PyTorch (sequential scan, no fused kernels)", engine="transformers generate")
    assert "reference PyTorch (sequential scan" in card_markdown_from_dict(old)
    assert card.kernel_path in card_markdown_from_dict(card.to_dict())
