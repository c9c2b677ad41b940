"""Markdown renderings of architecture cards and presets (pure strings, no gradio)."""

from __future__ import annotations

from comparer.models.arch import ArchitectureCard


def card_markdown(card: ArchitectureCard) -> str:
    """The card as a small table, warnings first so a misnamed model cannot be missed."""
    warnings = "".join(f"> ⚠️ **{w}**\n\n" for w in card.warnings)
    cache = (f"SSM state {card.ssm_state_bytes / 2**10:,.0f} KiB (flat in context)" if card.ssm_state_bytes
             else f"KV cache {card.kv_bytes_per_token / 2**10:,.1f} KiB per token")
    rows = [("family", f"**{card.family}** ({card.model_type}: {', '.join(card.architectures)})"),
            ("parameters", f"{card.n_params / 1e6:,.1f} M"), ("layers × hidden", f"{card.n_layers} × {card.hidden_size}"),
            ("dtype / device", f"{card.dtype} on {card.device}"), ("device map", card.device_map),
            ("memory per context", cache), ("kernel path", card.kernel_path), ("weights", card.weights)]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"{warnings}| **{card.model_id}** | |\n|---|---|\n{table}"
