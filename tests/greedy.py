"""transformers' own greedy generate: the reference every fast path's tokens are checked against."""

import torch


def reference_tokens(model, prompt: list[int], n: int) -> list[int]:
    """Exactly ``n`` greedy new tokens after ``prompt`` on the model's device."""
    ids = torch.tensor([prompt], device=model.device)
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, pad_token_id=0)
    return out[0, len(prompt):].tolist()
