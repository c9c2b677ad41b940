"""A Mamba engine that runs on the Hugging Face checkpoint's own weights, without transformers'
per-call overhead: chunked prefill that carries the recurrent state between chunks (flat memory
at any prompt length) and, on CUDA, a decode step captured once as a CUDA graph.

Why: eager ``generate`` decodes Mamba-2.8B at ~15-25 tok/s on an H200 because every token
launches ~1,000 small kernels; one graph replay per token removes the launch gaps. The math
mirrors transformers' MambaBlock / MambaMixer exactly (same fp32 residual, same casts), so greedy
tokens match the reference path. Graph capture happens in ``__init__`` (at load), never inside a
measured or streamed generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from comparer.engines.graphs import capture
from comparer.engines.mamba_ops import final_norm
from comparer.engines.stepping import StepEngine
from comparer.memory import is_cuda, tensor_bytes
from comparer.models.arch import FAST, ArchitectureCard, KernelPath

# Prefill chunks (the state is carried between them): the largest of CHUNK_CHOICES that fits in half of the
# free device memory, so a prompt up to 32K tokens runs in one pass and a longer one in few large chunks,
# never out of memory. On the H200, Mamba-2.8B at 128K: 2.064 s in 32K chunks, 2.087 s in one pass, 2.092 s
# in 8K chunks (assets/benchmarks/logs/h200-prefill-chunks.json). The CPU keeps 8K chunks.
CHUNK_CHOICES = (32768, 16384, 8192, 4096, 2048, 1024)
CPU_CHUNK_TOKENS = 8192
DEFAULT_CHUNK_TOKENS = None  # None: chosen per prompt as above


def chunk_from_free(n_tokens: int, free_b: int, per_token_b: int) -> int:
    """The largest of CHUNK_CHOICES whose activations (``per_token_b`` a token) fit in half of ``free_b``
    (the smallest choice when none does), never more than the prompt."""
    fits = [c for c in CHUNK_CHOICES if c * per_token_b <= free_b // 2]
    return min(fits[0] if fits else CHUNK_CHOICES[-1], n_tokens)


@dataclass
class _Layer:
    norm_w: torch.Tensor
    in_proj: torch.Tensor
    conv_w: torch.Tensor  # (d_inner, d_conv)
    conv_b: torch.Tensor | None
    x_proj: torch.Tensor
    dt_proj: torch.Tensor
    dt_bias: torch.Tensor  # fp32
    A: torch.Tensor  # (d_inner, d_state) fp32, negative
    D: torch.Tensor  # fp32
    out_proj: torch.Tensor

    @classmethod
    def from_block(cls, block) -> "_Layer":
        m = block.mixer
        return cls(block.norm.weight, m.in_proj.weight, m.conv1d.weight.squeeze(1), m.conv1d.bias,
                   m.x_proj.weight, m.dt_proj.weight, m.dt_proj.bias.float(), -torch.exp(m.A_log.float()),
                   m.D.float(), m.out_proj.weight)


class MambaFastEngine(StepEngine):
    def __init__(self, model, card: ArchitectureCard, ops, cuda_graph: bool,
                 chunk_tokens: int | None = DEFAULT_CHUNK_TOKENS):
        cfg = model.config
        if getattr(cfg, "use_bias", False):
            raise ValueError("MambaFastEngine supports Mamba-1 checkpoints without projection biases.")
        self.model, self.card, self.ops, self.chunk_tokens = model.eval(), card, ops, chunk_tokens
        self.device, self.dtype = str(model.device), model.lm_head.weight.dtype
        self.eps, self.residual_in_fp32 = cfg.layer_norm_epsilon, cfg.residual_in_fp32
        self.time_step_rank, self.d_state = int(cfg.time_step_rank), int(cfg.state_size)
        backbone = model.backbone
        self.embed, self.norm_f, self.lm_head = backbone.embeddings.weight, backbone.norm_f.weight, model.lm_head.weight
        self.layers = [_Layer.from_block(b) for b in backbone.layers]
        with torch.inference_mode():
            self._alloc_state(int(cfg.intermediate_size), int(cfg.conv_kernel))
            ops.prepare(self.dtype, self.d_state, layer=self.layers[0])
        self.graph, self.capture_s = None, 0.0
        self.last_chunk_tokens = None  # what the last prefill ran in (benchmarks record it)
        if cuda_graph:
            self._capture()

    # ---- state -------------------------------------------------------------------------------
    def _alloc_state(self, d_inner: int, d_conv: int) -> None:
        n = len(self.layers)
        self.conv_state = torch.zeros(n, 1, d_inner, d_conv, dtype=self.dtype, device=self.device)
        self.ssm_state = torch.zeros(n, 1, d_inner, self.d_state, dtype=torch.float32, device=self.device)
        self.step_token = torch.zeros(1, dtype=torch.long, device=self.device)
        self.step_logits = torch.zeros(1, self.lm_head.shape[0], dtype=torch.float32, device=self.device)
        # per-layer x_proj accumulators of the fused decode kernels (int64 fixed point, zero between uses)
        self.xproj_acc = torch.zeros(n, self.time_step_rank + 2 * self.d_state, dtype=torch.int64,
                                     device=self.device)

    def cache_bytes(self) -> int:
        """The recurrent state as allocated: conv windows, SSM states, the step's buffers."""
        return tensor_bytes([self.conv_state, self.ssm_state, self.step_token, self.step_logits, self.xproj_acc])

    def weight_bytes(self) -> int:
        """The checkpoint's tensors plus the fp32 copies the engine derives from them (dt bias, A, D)."""
        derived = [t for layer in self.layers for t in vars(layer).values() if isinstance(t, torch.Tensor)]
        return tensor_bytes([*self.model.parameters(), *self.model.buffers(), *derived])

    def _reset_state(self) -> None:
        self.conv_state.zero_()
        self.ssm_state.zero_()
        self.xproj_acc.zero_()

    # ---- shared math (mirrors transformers' MambaBlock) ---------------------------------------
    def _logits(self, delta, residual):
        """norm_f on the fp32 residual stream, then the LM head, as transformers does."""
        return F.linear(final_norm(delta, residual, self.norm_f, self.eps, self.dtype), self.lm_head).float()

    # ---- prefill -----------------------------------------------------------------------------
    def activation_bytes_per_token(self) -> int:
        """What one prompt token of a chunk holds at the peak of a layer, in the model's dtype: in_proj's x
        and z, the conv output, dt, the scan's y and gated y (6 values per channel), x_proj's rows, and
        the hidden-size rows (block output, norm output, out_proj, the residual: 2 bytes of fp32 counted as
        2 values), with a quarter more for the allocator. Mamba-2.8B in fp16: 107 KiB (measured on the H200:
        2.36 GiB over a 32K chunk with the Triton scan, 2.52 with mamba-ssm's, 77-81 KB per token)."""
        d_inner, hidden = self.layers[0].A.shape[0], self.embed.shape[1]
        values = 6 * d_inner + 5 * hidden + self.layers[0].x_proj.shape[0]
        return values * self.embed.element_size() * 5 // 4

    def chunk_for(self, n_tokens: int) -> int:
        """The chunk a prompt of ``n_tokens`` runs in: ``chunk_tokens`` when the caller fixed it, else the
        largest of CHUNK_CHOICES whose activations fit in half of the free device memory (the caching
        allocator's unused blocks count as free), never more than the prompt."""
        if self.chunk_tokens:
            return min(self.chunk_tokens, n_tokens)
        if not is_cuda(self.device):
            return min(CPU_CHUNK_TOKENS, n_tokens)
        free_b, _ = torch.cuda.mem_get_info(self.device)
        free_b += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return chunk_from_free(n_tokens, free_b, self.activation_bytes_per_token())

    @torch.inference_mode()
    def prefill(self, prompt_ids: list[int], new_tokens: int = 0) -> torch.Tensor:
        """Run the prompt in chunks (``chunk_for``); returns the last position's logits (1, vocab).
        ``new_tokens`` is unused: the recurrent state has the same size at any length."""
        if not prompt_ids:
            raise ValueError("The prompt is empty: type at least one token of text.")
        self._reset_state()
        # through numpy: a 32K-token list becomes a tensor in 0.9 ms instead of 3.1 (this CPU)
        ids = torch.from_numpy(np.asarray(prompt_ids, dtype=np.int64)).to(self.device)[None]  # (1, seq)
        step = self.last_chunk_tokens = self.chunk_for(ids.shape[1])
        for start in range(0, ids.shape[1], step):
            chunk = ids[:, start:start + step]
            valid = chunk.shape[1]
            # padding at the end changes nothing before it (causal); the ops carry the states from `valid`
            chunk = F.pad(chunk, (0, -valid % self.ops.pad_to))
            delta, residual = F.embedding(chunk, self.embed), None
            for i, layer in enumerate(self.layers):
                normed, residual = self.ops.add_norm(delta, residual, layer.norm_w, self.eps, self.residual_in_fp32)
                delta = self.ops.chunk_mixer(layer, normed, self.conv_state[i], self.ssm_state[i], self.time_step_rank,
                                             valid, from_zero=start == 0)
        return self._logits(delta[:, valid - 1], residual[:, valid - 1])

    # ---- decode ------------------------------------------------------------------------------
    def _step(self) -> None:
        """One token from ``step_token`` into ``step_logits``; updates the states in place."""
        delta, residual = F.embedding(self.step_token, self.embed), None  # (1, hidden)
        acc = self.xproj_acc
        for i, layer in enumerate(self.layers):  # layer i's norm clears layer i-1's accumulator (0: the last)
            after = self.layers[i + 1].in_proj if i + 1 < len(self.layers) else None  # warmed into L2 on the way
            delta, residual = self.ops.decode_layer(layer, delta, residual, self.eps, self.residual_in_fp32,
                                                    self.conv_state[i], self.ssm_state[i], self.time_step_rank,
                                                    acc=acc[i], zero=acc[i - 1], next_in_proj=after)
        normed = self.ops.final_norm(delta, residual, self.norm_f, self.eps, self.residual_in_fp32, self.dtype)
        self.step_logits.copy_(F.linear(normed, self.lm_head))  # copy_ casts to fp32, as .float() would

    @torch.inference_mode()
    def _capture(self) -> None:
        """Capture the decode step as a CUDA graph; the warm-up steps' state changes are undone."""
        t0 = time.perf_counter()
        saved = (self.conv_state.clone(), self.ssm_state.clone())
        self.graph = capture(self._step, warmups=3)
        self.conv_state.copy_(saved[0])
        self.ssm_state.copy_(saved[1])
        torch.cuda.synchronize()
        self.capture_s = time.perf_counter() - t0

    @torch.inference_mode()
    def decode_step(self, token: torch.Tensor) -> torch.Tensor:
        self.step_token.copy_(token.reshape(1))
        if self.graph is not None:
            self.graph.replay()
        else:
            self._step()
        return self.step_logits

    def _chunk_words(self) -> str:
        if self.chunk_tokens:
            return f"chunks of {self.chunk_tokens:,} tokens"
        if not is_cuda(self.device):
            return f"chunks of {CPU_CHUNK_TOKENS:,} tokens"
        return (f"one pass up to {CHUNK_CHOICES[0]:,} tokens, longer prompts in chunks of {CHUNK_CHOICES[0]:,} "
                f"(smaller when free device memory is short: at most half of it per chunk)")

    def describe(self) -> KernelPath:
        ops = self.ops
        norm = ", fused add+RMSNorm" if ops.fused_norm else ""
        decode = ops.step_name
        if ops.fused_decode:
            from comparer.kernels import mamba_decode

            settings = ops.kernel_settings()
            pdl = mamba_decode.pdl_on(self.lm_head, settings)
            # the same rule as _step: with one layer, layer 0's norm clears its own accumulator
            one = ops.fuses_layer(self.layers[0], self.ssm_state[0], clears_own_accumulator=len(self.layers) == 1)
            warm = mamba_decode.warms(self.layers[0], self.ssm_state[0], settings)
            decode = ("Triton fused step" + (" (norm, in_proj and conv in one kernel)" if one else "")
                      + (" with programmatic dependent launch" if pdl else "")
                      + (", the next projection's weight warmed into L2" if warm else ""))
        graph = self.graph is not None
        return KernelPath(FAST, ops.name, f"{self._chunk_words()} carrying the state{norm}",
                          f"{decode}, {'CUDA graph' if graph else 'eager'}", cuda_graph=graph,
                          compile_s=ops.compile_s, capture_s=self.capture_s if graph else None,
                          compiled=ops.compiled_what)
