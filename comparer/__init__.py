"""comparer: a Mamba (selective state-space) model and a Transformer, side by side.

Data flows one way: engine -> measure -> record -> plot / UI. Nothing here imports gradio;
only ``comparer.ui`` does, so the engine and benchmark layers run on GPU hosts without it.
"""

__version__ = "0.1.0"
