"""Kernels: Triton decode/prefill kernels, the compiled C CPU scan, the kernel probes. Nothing here imports
an engine: engines call kernels, never the other way round."""
