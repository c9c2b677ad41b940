"""Both fast engines streaming side by side on one GPU through PairRun, the path the app uses
(skipped without CUDA, the mamba-ssm kernels and Triton)."""

import pytest
import torch

from comparer.kernels import mamba_kernels_available, module_available
from comparer.settings import GenerationSettings

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
              pytest.mark.skipif(not (mamba_kernels_available() and module_available("triton")),
                                 reason="needs mamba-ssm, causal-conv1d and triton")]


def test_auto_engines_stream_side_by_side_with_the_tokens_each_gives_alone():
    from comparer.loading import load_model
    from comparer.pair import PairRun
    from comparer.pool import preset_specs
    from comparer.presets import get_preset

    specs = preset_specs(get_preset("small"), random_weights=True)
    models = {side: load_model(spec, "cuda", engine="auto") for side, spec in zip(("left", "right"), specs)}
    assert models["left"].card.kernel_path.startswith("comparer fast Mamba")
    assert models["right"].card.kernel_path.startswith("comparer fast Transformer")
    settings = GenerationSettings(max_new_tokens=48, fixed_length=True)
    prompt = "Maia gets ready for her next adventure. She finds a toy boat and"
    final = list(PairRun(models, prompt, settings))[-1]
    for side, model in models.items():
        alone = model.engine.generate(model.tokenizer(prompt)["input_ids"], settings).token_ids
        assert final[side].status == "done" and final[side].token_ids == alone
