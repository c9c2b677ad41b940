"""Launch the comparer web app. Flags and launch only: everything else lives in comparer/."""

from __future__ import annotations

import argparse
import os


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Mamba vs Transformer, side by side.")
    parser.add_argument("--preset", default=os.environ.get("COMPARER_PRESET", "offline"),
                        help="model pair shown first (offline, small, paper, seed)")
    parser.add_argument("--presets", default=os.environ.get("COMPARER_PRESETS", ""),
                        help="comma-separated presets offered in the UI (default: all)")
    parser.add_argument("--device", default=os.environ.get("COMPARER_DEVICE"), help="cuda or cpu (default: auto)")
    parser.add_argument("--dtype", default=os.environ.get("COMPARER_DTYPE"), choices=["float16", "bfloat16", "float32"],
                        help="weights dtype (default: float16 on CUDA, float32 on the CPU)")
    parser.add_argument("--engine", default=os.environ.get("COMPARER_ENGINE", "auto"), choices=["hf", "fast", "auto"],
                        help="auto (default): comparer's fast engines on CUDA for both sides (Triton kernels, no "
                             "mamba-ssm needed; CUDA graphs); on the CPU the compiled "
                             "C scan for Mamba and transformers for Transformers; "
                             "hf: transformers generate everywhere; fast: comparer's engines everywhere")
    parser.add_argument("--free-model-entry", action="store_true",
                        default=os.environ.get("COMPARER_FREE_MODEL_ENTRY", "") == "1",
                        help="let visitors load any two Hub models (off: only the presets' models)")
    for side in ("left", "right"):
        upper = side.upper()
        parser.add_argument(f"--{side}-endpoint", default=os.environ.get(f"COMPARER_{upper}_ENDPOINT"),
                            help=f"{side} model on an OpenAI-compatible server (vLLM, SGLang, llama.cpp): "
                                 "URL#served-name; both endpoints make the 'served' pair, shown first")
        parser.add_argument(f"--{side}-dir", default=os.environ.get(f"COMPARER_{upper}_DIR"),
                            help=f"folder with the {side} served model's config.json and tokenizer (its card's "
                                 "architecture and prompt token counts)")
        parser.add_argument(f"--{side}-hardware", default=os.environ.get(f"COMPARER_{upper}_HARDWARE"),
                            help=f"name of what the {side} server computes on (default: its host); two servers "
                                 "race at once only on different hardware")
        parser.add_argument(f"--{side}-api-key-env", default=os.environ.get(f"COMPARER_{upper}_API_KEY_ENV"),
                            help=f"name of the environment variable holding the {side} server's API key "
                                 "(the key itself is never logged or stored)")
    parser.add_argument("--random-weights", action="store_true",
                        help="build the preset models from bundled configs with random weights (no download)")
    parser.add_argument("--host", default=os.environ.get("COMPARER_HOST", "0.0.0.0" if os.environ.get("SPACE_ID")
                                                          else "127.0.0.1"),
                        help="127.0.0.1 unless told otherwise (0.0.0.0 on a Hugging Face Space)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("COMPARER_PORT", "7860")))
    parser.add_argument("--queue-size", type=int, default=int(os.environ.get("COMPARER_QUEUE_MAX", "0")) or None,
                        help="requests waiting beyond this are told the queue is full (default 16; on ZeroGPU 8, "
                             "since each comparison holds the GPU for its whole duration)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's file cache per instance (two apps on one machine shared /tmp/gradio), cleaned hourly
    os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join("data", "gradio-cache", str(os.getpid())))
    _import_spaces_first()
    args = parse_args(argv)
    _log_to_terminal()
    from comparer.ui.app import create_app, launch_kwargs

    if args.left_endpoint or args.right_endpoint:
        args.preset = _served_pair(args)

    demo = create_app(args.preset, args.presets, args.device, args.random_weights, dtype=args.dtype,
                      engine=args.engine, free_entry=args.free_model_entry)
    demo.queue(max_size=args.queue_size or _default_queue_size()).launch(
        server_name=args.host, server_port=args.port, ssr_mode=False, show_error=False, run_history=False,
        footer_links=["api"], **launch_kwargs())


def _served_pair(args: argparse.Namespace) -> str:
    """Both sides served elsewhere: register the 'served' pair (comparer.models.presets.served_preset)."""
    from comparer.models.presets import register_preset, served_preset

    if not (args.left_endpoint and args.right_endpoint):
        raise SystemExit("Give both --left-endpoint and --right-endpoint (URL#served-name each).")
    sides = {"left": (args.left_endpoint, args.left_dir), "right": (args.right_endpoint, args.right_dir)}
    register_preset(served_preset("served", sides, {"left": args.left_api_key_env, "right": args.right_api_key_env},
                                  hardware={"left": args.left_hardware, "right": args.right_hardware}))
    return "served"


def _log_to_terminal() -> None:
    """comparer's own log lines (a refused pair, a vote before any comparison: one line each) on stderr."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s comparer: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("comparer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _default_queue_size() -> int:
    from comparer.ui import zerogpu

    return zerogpu.QUEUE_SIZE if zerogpu.wanted() else 16


def _import_spaces_first() -> None:
    """ZeroGPU needs ``spaces`` imported before anything touches CUDA; absent elsewhere."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        pass


if __name__ == "__main__":
    main()
