"""A Transformer engine with a preallocated KV cache and, on CUDA, one captured graph per cache bucket.

Why: transformers' eager ``generate`` decodes Pythia-6.9B at ~15 tok/s on an H200, a fraction of
the ~300 tok/s that reading 13.7 GB of weights per token allows: every token re-enters Python,
grows the cache and launches hundreds of small kernels. Here the weights stay in the model's own
modules (the prefill calls its norms, projections and MLPs as they are, so its math is transformers'), the
cache is allocated once at load, and the decode step is a CUDA graph whose attention reads the
current length from the device (``decode_attention``). A graph is captured per bucket — a cap on
the keys attention may read, which sets its grid — at load; a generation picks the smallest bucket
that holds its prompt plus its new tokens, so no prompt length ever captures or compiles again.
Prefill is one pass with PyTorch's fused causal attention, writing the cache as it goes. The decode
step's projections go through comparer's tiled GEMV with programmatic dependent launch where it
applies (projections.py; Pythia-6.9B at 512 tokens on the H200: 229.5 -> 267.0 tok/s in the benchmark
records h200-paper-pythia-fast.json -> h200-paper-fast-gemv.json), on the modules' own weights.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from comparer.models.arch import FAST, ArchitectureCard, KernelPath
from comparer.kernels import decode_attention as da
from comparer.kernels import decode_norms as dn
from comparer.kernels.triton import triton_available
from comparer.engines.graphs import capture
from comparer.engines.projections import DecodeKernels, Projector, fuse_rows
from comparer.engines.stepping import StepEngine
from comparer.memory import is_cuda, tensor_bytes

DEFAULT_MAX_CONTEXT_TOKENS = 4096
SMALLEST_BUCKET_TOKENS = 1024


class _Family:
    """What both families share: run the blocks in order, each on its layer's device."""

    layers: list

    def blocks(self, h, attend_of, on):
        """h (seq, hidden) through every layer; ``attend_of(i)`` is layer i's attention, ``on(i, t)``
        moves t to layer i's device."""
        for i, layer in enumerate(self.layers):
            h = self.block(layer, on(i, h), attend_of(i))
        return h


class GPTNeoXFamily(_Family):
    """Pythia / GPT-NeoX: fused per-head [q|k|v] projection, partial rotary, parallel residual."""

    def __init__(self, model):
        self.base, self.head = model.gpt_neox, model.get_output_embeddings()
        self.layers, self.rotary = list(self.base.layers), self.base.rotary_emb
        att = self.layers[0].attention
        self.head_dim, self.heads = att.head_size, model.config.num_attention_heads
        self.kv_heads, self.scale, self.parallel = self.heads, att.scaling, model.config.use_parallel_residual
        # the MLP's activation inside the up projection's GEMV only where it is exact GELU
        self.act = "gelu" if model.config.hidden_act == "gelu" else None

    def embed(self, ids):
        return self.base.embed_in(ids)

    def fuse(self) -> None:
        """Nothing to fuse: GPT-NeoX already projects q, k and v with one weight."""

    def qkv(self, layer, x):
        """x (seq, hidden) -> q, k, v as (seq, heads, head_dim) views of one projection."""
        return self.split_heads(layer.attention.query_key_value(x))

    def split_heads(self, qkv):
        """The fused projection's output (seq, 3 * hidden), per head [q|k|v] -> q, k, v views."""
        return qkv.view(qkv.shape[0], self.heads, 3 * self.head_dim).split(self.head_dim, dim=-1)

    def block(self, layer, h, attend):
        attn = layer.attention.dense(attend(*self.qkv(layer, layer.input_layernorm(h))))
        if self.parallel:
            return layer.mlp(layer.post_attention_layernorm(h)) + attn + h
        attn = attn + h
        return layer.mlp(layer.post_attention_layernorm(attn)) + attn

    def logits(self, h):
        return self.head(self.base.final_layer_norm(h)).float()

    def decode(self, h, attend_of, on, fused: bool, project: Projector):
        """One token through every layer -> logits (1, vocab). ``fused``: the Triton add+norm pair
        (parallel residual only) and ``project``'s GEMVs; ``on(i, t)`` moves t to layer i's device."""
        if not (fused and self.parallel):
            return self.logits(self.blocks(h, attend_of, on))
        mlp = attn = None
        for i, layer in enumerate(self.layers):
            h, attn_in, mlp_in = dn.add_ln_pair(on(i, h), on(i, mlp), on(i, attn), layer.input_layernorm,
                                                layer.post_attention_layernorm, pdl=project.pdl(h))
            att = layer.attention
            qkv = project("qkv", attn_in, att.query_key_value.weight, att.query_key_value.bias)
            attn = project("out", attend_of(i)(*self.split_heads(qkv)), att.dense.weight, att.dense.bias)
            mlp = self.mlp(layer.mlp, mlp_in, project)
        return self.logits(on(0, mlp + attn + h))

    def mlp(self, mlp, x, project: Projector):
        """The MLP of one token: two GEMVs, GELU applied as the first one stores its rows."""
        if self.act is None:
            return mlp(x)
        up = project("up", x, mlp.dense_h_to_4h.weight, mlp.dense_h_to_4h.bias, act=self.act)
        return project("down", up, mlp.dense_4h_to_h.weight, mlp.dense_4h_to_h.bias)


class LlamaFamily(_Family):
    """Llama-style: separate q/k/v projections, grouped KV heads, RMSNorm, sequential residual."""

    def __init__(self, model):
        self.base, self.head = model.model, model.get_output_embeddings()
        self.layers, self.rotary = list(self.base.layers), self.base.rotary_emb
        att, cfg = self.layers[0].self_attn, model.config
        self.head_dim, self.heads = att.head_dim, cfg.num_attention_heads
        self.kv_heads, self.scale, self.parallel = cfg.num_key_value_heads, att.scaling, False
        self.act = "silu_gate" if cfg.hidden_act == "silu" else None
        self.qkv_rows = self.gate_up_rows = None  # per layer (weight, bias) once fused

    def embed(self, ids):
        return self.base.embed_tokens(ids)

    def fuse(self) -> None:
        """q/k/v and gate/up as one weight each (the modules' weights become views of it), so the
        decode step reads each group in one GEMV launch. This re-points the model's own parameters:
        casting or moving the model afterwards (which any captured graph would not survive either)
        needs a new engine."""
        def rows(modules):
            return fuse_rows(modules), fuse_rows(modules, "bias")
        self.qkv_rows = [rows([l.self_attn.q_proj, l.self_attn.k_proj, l.self_attn.v_proj]) for l in self.layers]
        if self.act is not None:
            self.gate_up_rows = [rows([l.mlp.gate_proj, l.mlp.up_proj]) for l in self.layers]

    def qkv(self, layer, x):
        att, seq = layer.self_attn, x.shape[0]
        return (att.q_proj(x).view(seq, self.heads, self.head_dim), att.k_proj(x).view(seq, self.kv_heads, self.head_dim),
                att.v_proj(x).view(seq, self.kv_heads, self.head_dim))

    def block(self, layer, h, attend):
        h = h + layer.self_attn.o_proj(attend(*self.qkv(layer, layer.input_layernorm(h))))
        return h + layer.mlp(layer.post_attention_layernorm(h))

    def logits(self, h):
        return self.head(self.base.norm(h)).float()

    def decode(self, h, attend_of, on, fused: bool, project: Projector):
        """One token through every layer -> logits (1, vocab); ``fused``: Triton add+RMSNorm and
        ``project``'s GEMVs."""
        if not fused:
            return self.logits(self.blocks(h, attend_of, on))
        delta = None
        for i, layer in enumerate(self.layers):
            pdl = project.pdl(h)
            h, normed = dn.add_rms(on(i, h), on(i, delta), layer.input_layernorm, pdl=pdl)
            o = layer.self_attn.o_proj
            out = project("out", attend_of(i)(*self.qkv_one(i, layer, normed, project)), o.weight, o.bias)
            h, normed = dn.add_rms(h, out, layer.post_attention_layernorm, pdl=pdl)
            delta = self.mlp(i, layer.mlp, normed, project)
        return self.logits(on(0, h + delta))

    def qkv_one(self, i: int, layer, x, project: Projector):
        """q, k, v of one token (1, heads, head_dim) each: one GEMV over the fused rows when fused."""
        if self.qkv_rows is None or not project.kernels.fuse:
            return self.qkv(layer, x)
        q_cols, kv_cols = self.heads * self.head_dim, self.kv_heads * self.head_dim
        qkv = project("qkv", x, *self.qkv_rows[i])  # (1, q_cols + 2 kv_cols)
        q, k, v = qkv.split([q_cols, kv_cols, kv_cols], dim=-1)
        return (q.view(1, self.heads, self.head_dim), k.view(1, self.kv_heads, self.head_dim),
                v.view(1, self.kv_heads, self.head_dim))

    def mlp(self, i: int, mlp, x, project: Projector):
        """down(silu(gate(x)) * up(x)): gate, up and the gating in one GEMV over the fused rows."""
        if self.gate_up_rows is None or not project.kernels.fuse:
            return mlp(x)
        gated = project("up", x, *self.gate_up_rows[i], act=self.act)  # (1, intermediate)
        return project("down", gated, mlp.down_proj.weight, mlp.down_proj.bias)


FAMILIES = {"gpt_neox": GPTNeoXFamily, "llama": LlamaFamily}


def fast_transformer_applies(model) -> tuple[bool, str]:
    """Whether this engine can run ``model`` as loaded, and why not when it cannot."""
    cfg = model.config
    if cfg.model_type not in FAMILIES:
        return False, f"no fast path for model_type '{cfg.model_type}' (gpt_neox and llama have one)"
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return False, f"rope_type '{rope.get('rope_type')}' is not supported by the fast path"
    devices = {p.device for p in model.parameters()}
    if any(d.type not in ("cuda", "cpu") for d in devices) or (len(devices) > 1 and any(d.type == "cpu" for d in devices)):
        return False, "layers offloaded to the CPU or disk: the fast path needs every layer on one kind of device"
    return True, ""


def buckets_for(max_context_tokens: int) -> list[int]:
    """Powers of two from 1,024 below the cache size, then the cache size itself."""
    sizes, size = [], SMALLEST_BUCKET_TOKENS
    while size < max_context_tokens:
        sizes.append(size)
        size *= 2
    return sizes + [max_context_tokens]


class TransformerFastEngine(StepEngine):
    def __init__(self, model, card: ArchitectureCard | None, max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
                 cuda_graph: bool = True, use_triton: bool | None = None, kernels: DecodeKernels = DecodeKernels()):
        """``use_triton`` None: the Triton kernels on CUDA, PyTorch attention elsewhere (tests force
        True on the CPU under ``TRITON_INTERPRET=1`` to check the kernels' math there). ``kernels``:
        the decode step's GEMV tiles and PDL (projections.DecodeKernels; CUBLAS is the step before)."""
        self.model, self.card = model.eval(), card
        self.family = FAMILIES[model.config.model_type](model)
        self.dtype = self.family.head.weight.dtype
        self.layer_devices = [next(layer.parameters()).device for layer in self.family.layers]
        self.device = str(self.layer_devices[0])
        on_cuda = is_cuda(self.layer_devices[0])
        self.use_triton = on_cuda and triton_available() if use_triton is None else use_triton
        self.project = Projector(kernels, self.use_triton)
        if self.use_triton:  # whatever ``kernels``: a graph captured on unfused weights would lose them to a later fusion
            self.family.fuse()
            if on_cuda:
                torch.cuda.empty_cache()  # the pre-fusion blocks, so memory figures count the model once
        self.max_context_tokens, self.buckets = max_context_tokens, buckets_for(max_context_tokens)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.captures, self.capture_s = 0, 0.0
        with torch.inference_mode():
            self._alloc(max_context_tokens)
        if cuda_graph and on_cuda and self.use_triton and len(set(self.layer_devices)) == 1:
            self._capture_all()

    def cache_bytes(self) -> int:
        """The KV cache preallocated for ``max_context_tokens`` (all of it, used or not), the rotary
        tables on each layer's device and the step's buffers."""
        tables = [t for pair in self.rope.values() for t in pair]
        return tensor_bytes([*self.k_cache, *self.v_cache, self.cos, self.sin, *tables, self.step_token,
                             self.pos, self.length, self.step_logits])

    # ---- state -------------------------------------------------------------------------------
    def _alloc(self, tokens: int) -> None:
        """KV cache per layer on its device; rotary tables from the model's own rotary module."""
        fam, dev = self.family, self.layer_devices[0]
        self.k_cache = [torch.zeros(fam.kv_heads, tokens, fam.head_dim, dtype=self.dtype, device=d)
                        for d in self.layer_devices]
        self.v_cache = [torch.zeros_like(k) for k in self.k_cache]
        probe = torch.zeros(1, dtype=self.dtype, device=dev)
        cos, sin = fam.rotary(probe, torch.arange(tokens, device=dev)[None])  # (1, tokens, rot)
        self.cos, self.sin = cos[0].to(self.dtype).contiguous(), sin[0].to(self.dtype).contiguous()
        # the tables on each layer's device, copied once here rather than at every layer of every step
        self.rope = {d: (self.cos.to(d), self.sin.to(d)) for d in dict.fromkeys(self.layer_devices)}
        self.step_token = torch.zeros(1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)  # where the next token's key goes
        self.length = torch.ones(1, dtype=torch.int32, device=dev)  # keys valid once it is written
        self.step_logits = torch.zeros(1, fam.head.weight.shape[0], dtype=torch.float32, device=dev)
        self.n_tokens, self.bucket = 0, self.buckets[-1]

    # ---- prefill -----------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(self, prompt_ids: list[int], new_tokens: int = 0) -> torch.Tensor:
        """One pass over the prompt writing the cache; returns the last position's logits (1, vocab)."""
        n = len(prompt_ids)
        if n + new_tokens > self.max_context_tokens:
            raise ValueError(f"prompt of {n} tokens + {new_tokens} new tokens exceeds this engine's cache of "
                             f"{self.max_context_tokens} tokens; shorten the prompt or load with a larger "
                             "max_context_tokens.")
        self.bucket = next(b for b in self.buckets if b >= n + new_tokens)
        h = self.family.embed(torch.tensor(prompt_ids, device=self.device))  # (seq, hidden)
        h = self.family.blocks(h, lambda i: self._prefill_attention(i, n), self._on)
        self.n_tokens = n
        self.pos.fill_(n)
        self.length.fill_(n + 1)
        return self.family.logits(self._on(0, h[-1:])).to(self.device)  # the head may sit on another GPU

    def _prefill_attention(self, i: int, n: int):
        cos, sin = (t[:n] for t in self.rope[self.layer_devices[i]])

        def attend(q, k, v):  # (seq, heads, head_dim) each
            seq = q.shape[0]
            q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # (heads, seq, head_dim)
            q, k = da.rotate(q, cos, sin), da.rotate(k, cos, sin)
            self.k_cache[i][:, :seq] = k
            self.v_cache[i][:, :seq] = v
            out = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, scale=self.family.scale,
                                                 enable_gqa=self.family.heads != self.family.kv_heads)
            return out[0].transpose(0, 1).reshape(seq, -1)  # (seq, heads * head_dim)
        return attend

    # ---- decode ------------------------------------------------------------------------------
    def _step(self, bucket: int) -> None:
        """One token from ``step_token`` into ``step_logits``; writes its keys at ``pos`` and advances."""
        h = self.family.embed(self.step_token)  # (1, hidden)
        logits = self.family.decode(h, lambda i: self._decode_attention(i, bucket), self._on, self.use_triton,
                                    self.project)
        self.step_logits.copy_(logits)
        self.pos.add_(1)
        self.length.add_(1)

    def _on(self, i: int, t):
        return t.to(self.layer_devices[i]) if t is not None else None

    def _decode_attention(self, i: int, bucket: int):
        fam = self.family

        def attend(q, k, v):  # (1, heads, head_dim) each
            if self.use_triton:
                dev, pdl = q.device, self.project.pdl(q)
                cos, sin = self.rope[self.layer_devices[i]]
                q_rot = da.rope_cache_write(q[0], k[0], v[0], cos, sin, self.pos.to(dev), self.k_cache[i],
                                            self.v_cache[i], pdl=pdl)
                out = da.decode_attention(q_rot, self.k_cache[i], self.v_cache[i], self.length.to(dev), fam.scale,
                                          bucket, pdl=pdl)
                return out.reshape(1, -1)
            return self._torch_decode_attention(i, q, k, v)
        return attend

    def _torch_decode_attention(self, i: int, q, k, v):
        """CPU path: the same math with the position read on the host (no graph to keep static)."""
        t = self.n_tokens
        cos, sin = self.cos[t:t + 1], self.sin[t:t + 1]
        q, k = da.rotate(q.transpose(0, 1), cos, sin)[:, 0], da.rotate(k.transpose(0, 1), cos, sin)[:, 0]
        self.k_cache[i][:, t] = k
        self.v_cache[i][:, t] = v[0]
        return da.torch_decode_attention(q, self.k_cache[i], self.v_cache[i], t + 1, self.family.scale).reshape(1, -1)

    @torch.inference_mode()
    def _capture_all(self) -> None:
        """Compile the Triton kernels and capture one decode graph per bucket, at load. Each warm-up
        and capture step writes a key at ``pos``; the cache is zeroed afterwards."""
        t0 = time.perf_counter()
        pool = None
        for bucket in self.buckets:
            self.pos.fill_(0)
            self.length.fill_(1)
            graph = capture(lambda: self._step(bucket), pool=pool)
            pool = graph.pool()
            self.graphs[bucket] = graph
            self.captures += 1
        for k, v in zip(self.k_cache, self.v_cache):
            k.zero_()
            v.zero_()
        torch.cuda.synchronize()
        self.capture_s = time.perf_counter() - t0

    @torch.inference_mode()
    def decode_step(self, token: torch.Tensor) -> torch.Tensor:
        if self.n_tokens >= self.max_context_tokens:
            raise ValueError(f"the KV cache of {self.max_context_tokens} tokens is full")
        self.step_token.copy_(token.reshape(1))
        graph = self.graphs.get(self.bucket)
        if graph is not None:
            graph.replay()
        else:
            self._step(self.bucket)
        self.n_tokens += 1
        return self.step_logits

    def describe(self) -> KernelPath:
        devices = len(set(self.layer_devices))
        projections = self.project.describe(self.family.head.weight)
        if self.graphs:
            decode = (f"Triton split-KV attention, {projections}, CUDA graphs ({len(self.graphs)} buckets up to "
                      f"{self.buckets[-1]})")
        elif self.use_triton:
            decode = f"Triton split-KV attention, {projections}, eager" + (
                f" (a CUDA graph cannot span {devices} GPUs)" if devices > 1 else "")
        else:
            decode = "PyTorch attention, eager"
        return KernelPath(FAST, "Triton" if self.use_triton else "PyTorch",
                          f"SDPA causal into a preallocated KV cache of {self.max_context_tokens} tokens", decode,
                          cuda_graph=bool(self.graphs), devices=devices,
                          capture_s=self.capture_s if self.graphs else None, graphs=len(self.graphs))
