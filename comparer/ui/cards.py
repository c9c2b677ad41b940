"""Markdown renderings of architecture cards and presets (pure strings, no gradio).

Why two: a visitor needs one line beside the text (family, size, data, perplexity where known, what
runs); a reviewer checking a figure opens the full card, folded under the pane.
"""

from __future__ import annotations

from comparer.models.arch import ArchitectureCard


def card_line(card: ArchitectureCard) -> str:
    """The pane's header line: what the model is and what runs, warnings first."""
    warnings = "".join(f"⚠️ **{w}**  \n" for w in card.warnings)
    facts = [f"**{card.family}** ({card.model_type})", f"{params_text(card.n_params)} parameters"]
    if card.data:
        facts.append(f"trained on {card.data}")
    if card.weights != "trained":
        facts.append(f"weights {card.weights}")
    if card.test_perplexity is not None:
        facts.append(f"test perplexity **{card.test_perplexity:.1f}**")
    facts.append(f"runs {card.engine}, {card.dtype} on {card.device}")
    return warnings + " · ".join(facts)


def params_text(n_params: int) -> str:
    return f"{n_params / 1e9:.1f}B" if n_params >= 1e9 else f"{n_params / 1e6:.1f}M"


def card_markdown(card: ArchitectureCard) -> str:
    """The pane's card: its one line, then the full table folded (open it to check a figure)."""
    return f"{card_line(card)}\n\n<details><summary>full card</summary>\n\n{card_table(card)}\n\n</details>"


def card_table(card: ArchitectureCard) -> str:
    """The full card as a two-column table, warnings first so a misnamed model cannot be missed."""
    warnings = "".join(f"> ⚠️ **{w}**\n\n" for w in card.warnings)
    cache = (f"SSM state {card.ssm_state_bytes / 2**10:,.0f} KiB (flat in context)" if card.ssm_state_bytes
             else f"KV cache {card.kv_bytes_per_token / 2**10:,.1f} KiB per token")
    rows = [("model", f"**{card.model_id}**"),
            ("family", f"**{card.family}** ({card.model_type}: {', '.join(card.architectures)})"),
            ("parameters", f"{card.n_params / 1e6:,.1f} M"), ("layers × hidden", f"{card.n_layers} × {card.hidden_size}"),
            ("trained on", card.data or "not stated"),
            ("held-out perplexity", f"{card.test_perplexity:.1f}" if card.test_perplexity is not None else "not measured here"),
            ("dtype / device", f"{card.dtype} on {card.device}"), ("device map", card.device_map),
            ("memory per context", cache), ("kernel path", card.kernel_path), ("weights", card.weights)]
    rows += [("note", note) for note in card.notes]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"{warnings}| property | value |\n|---|---|\n{table}"
