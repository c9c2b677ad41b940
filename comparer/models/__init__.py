"""Models: presets and the allowlist, the architecture card, loading the torch module, tokenizers."""
