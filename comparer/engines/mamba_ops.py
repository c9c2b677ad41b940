"""The Mamba-1 mixer's primitives (norms, conv, scan, state step, whole prefill/decode mixers) in four
interchangeable implementations, chosen by engines/select.py.

``TorchOps`` is pure PyTorch (CPU or GPU); ``CScanOps`` runs its prefill conv and scan in compiled C
on the CPU; ``KernelOps`` calls mamba-ssm / causal-conv1d CUDA kernels; ``TritonOps`` needs Triton
alone. All carry state across prefill chunks, which is what makes a 1M-token prompt run in flat
memory: the conv starts from the carried last inputs of the previous chunk, and the SSM state
either seeds the scan (TorchOps, CScanOps, TritonOps) or has its decayed contribution added to the
chunk's outputs (KernelOps: mamba-ssm's selective-scan kernel has no initial-state input).

Shapes: u, z, dt: (batch, d_inner, seq); B, C: (batch, d_state, seq); A: (d_inner, d_state) fp32;
ssm state: (batch, d_inner, d_state) fp32; conv state: (batch, d_inner, d_conv) = last d_conv inputs.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from comparer.memory import is_cuda


class TorchOps:
    """Pure PyTorch. The scan is blocked: a loop over ``block`` steps runs all blocks at once, then
    a loop over blocks carries the state, so Python iterates ~2*sqrt(seq) times instead of seq."""

    name = "PyTorch blocked scan"
    fused_norm = False
    fused_decode = False  # the decode step through comparer's Triton kernels (FusedDecodeMixin)
    step_name = "PyTorch step"  # what the decode step runs when it is not fused
    compiled_what = ""  # what prepare() compiles, for the card; compile_s: how long it took
    compile_s: float | None = None
    # in_proj as W @ x^T gives the channel-major rows the conv and scan read, without the transposed
    # copy of x @ W^T (measured on the CPU, where this class is the fallback without a C compiler).
    channel_major_in_proj = True

    pad_to = 1  # prefill chunks are padded to a multiple of this many tokens (TritonOps: aligned rows)

    def chunk_mixer(self, layer, normed, conv_state, ssm_state, time_step_rank: int, valid: int | None = None,
                    from_zero: bool = False):
        """One Mamba mixer over a prefill chunk, channel-major as the CUDA kernels want it.
        normed: (1, seq, hidden); conv_state (1, d, width) and ssm_state (1, d, n) are updated in place.
        ``valid``: the chunk's real tokens (the rest is padding), always all of them with pad_to 1.
        ``from_zero``: both states are zeros (a prompt's first chunk), which TritonOps can use."""
        if self.channel_major_in_proj:  # (1, 2*d_inner, seq) computed as W @ x^T: no transposed copy
            xz = torch.mm(layer.in_proj, normed[0].t()).unsqueeze(0)
        else:
            xz = F.linear(normed, layer.in_proj).transpose(1, 2)  # (1, 2*d_inner, seq)
        x, z = xz.chunk(2, dim=1)
        x, new_conv_state = self.conv(x, conv_state, layer.conv_w, layer.conv_b)
        conv_state.copy_(new_conv_state)
        d_state = layer.A.shape[1]
        if self.channel_major_in_proj:  # W @ x again: dt, B, C come out as the contiguous rows the scan reads
            xdbl = torch.mm(layer.x_proj, x[0])  # (dt_rank + 2n, seq)
            dt = torch.mm(layer.dt_proj, xdbl[:time_step_rank])[None]  # (1, d_inner, seq)
            B, C = xdbl[None, time_step_rank:time_step_rank + d_state], xdbl[None, time_step_rank + d_state:]
        else:
            dt, B, C = torch.split(F.linear(x.transpose(1, 2), layer.x_proj), [time_step_rank, d_state, d_state],
                                   dim=-1)
            dt, B, C = layer.dt_proj @ dt.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)
        y, new_ssm_state = self.scan(x, dt, layer.A, B, C, layer.D, z, layer.dt_bias, ssm_state)
        ssm_state.copy_(new_ssm_state)
        return F.linear(y.transpose(1, 2), layer.out_proj)

    def prepare(self, dtype: torch.dtype, d_state: int, layer=None) -> None:
        """Compile what the model's dtype needs, at load (nothing to compile here). ``layer``: the
        first layer, whose conv width and bias the kernels are compiled for."""

    def decode_layer(self, layer, delta, residual, eps: float, residual_in_fp32: bool, conv_state, ssm_state,
                     time_step_rank: int, acc=None, zero=None, next_in_proj=None):
        """One token through a block: residual add + RMSNorm, then the mixer. delta, residual: (1, hidden)
        (residual None in the first block); states in place. Returns (the mixer's output, the residual).
        ``acc``, ``zero``: this layer's and the previous layer's x_proj accumulators of the fused kernels;
        ``next_in_proj``: the next layer's in_proj weight, for the fused kernels to warm into L2 (both unused
        by this class)."""
        normed, residual = self.add_norm(delta, residual, layer.norm_w, eps, residual_in_fp32)
        return self.decode_mixer(layer, normed, conv_state, ssm_state, time_step_rank), residual

    def decode_mixer(self, layer, normed, conv_state, ssm_state, time_step_rank: int):
        """One token through the mixer, in_proj to out_proj, in PyTorch. normed: (1, hidden); states in place."""
        x, z = F.linear(normed, layer.in_proj).chunk(2, dim=-1)  # (1, d_inner) each
        x = self.conv_step(x, conv_state, layer.conv_w, layer.conv_b)
        d_state = layer.A.shape[1]
        dt, B, C = torch.split(F.linear(x, layer.x_proj), [time_step_rank, d_state, d_state], dim=-1)
        y = self.step(ssm_state, x, F.linear(dt, layer.dt_proj), layer.A, B, C, layer.D, z, layer.dt_bias)
        return F.linear(y, layer.out_proj)

    def final_norm(self, delta, residual, weight, eps: float, residual_in_fp32: bool, dtype: torch.dtype):
        """norm_f on the last layer's output, the LM head's input (see final_norm below)."""
        return final_norm(delta, residual, weight, eps, dtype)

    def add_norm(self, delta, residual, weight, eps: float, residual_in_fp32: bool):
        """Residual add then RMSNorm, as transformers' MambaBlock does it: the block input is cast to
        the norm's dtype before normalising; the residual stream is kept in fp32 when asked."""
        hidden = delta if residual is None else residual + delta
        x = hidden.to(weight.dtype).float()
        normed = weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)).to(weight.dtype)
        return normed, (hidden.float() if residual_in_fp32 else hidden)

    def conv(self, x, conv_state, weight, bias):
        """Causal depthwise conv + SiLU over a chunk; returns (out, new conv state)."""
        width = weight.shape[-1]
        x_ext = torch.cat([conv_state[..., 1:].to(x.dtype), x], dim=-1)  # (b, d, width-1+seq)
        out = F.conv1d(x_ext, weight.unsqueeze(1), bias, groups=x.shape[1])  # (b, d, seq)
        return F.silu(out), x_ext[..., -width:]

    def conv_step(self, x, conv_state, weight, bias):
        """One token: shift the window in place and convolve. x: (b, d)."""
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[..., -1] = x
        out = (conv_state * weight).sum(-1)
        if bias is not None:
            out = out + bias
        return F.silu(out).to(x.dtype)

    def scan(self, u, dt, A, B, C, D, z, dt_bias, h0, block: int = 32):
        """Selective scan from initial state ``h0``; returns (y, last state)."""
        delta = F.softplus(dt.float() + dt_bias[:, None])  # (b, d, seq)
        seq = u.shape[-1]
        pad = (-seq) % block
        decay = torch.exp(delta.unsqueeze(-1) * A[:, None, :])  # (b, d, seq, n)
        drive = (delta * u.float()).unsqueeze(-1) * B.float().transpose(1, 2)[:, None]  # (b, d, seq, n)
        if pad:
            decay = F.pad(decay, (0, 0, 0, pad), value=1.0)
            drive = F.pad(drive, (0, 0, 0, pad))
        states = _blocked_scan(decay, drive, h0, block)[:, :, :seq]  # (b, d, seq, n)
        y = torch.einsum("bdln,bnl->bdl", states, C.float()) + D[:, None] * u.float()
        y = y * F.silu(z.float())
        return y.to(u.dtype), states[:, :, -1]

    def step(self, state, x, dt, A, B, C, D, z, dt_bias):
        """One token: update ``state`` in place and return the output. x, dt, z: (b, d); B, C: (b, n)."""
        delta = F.softplus(dt.float() + dt_bias)
        state.mul_(torch.exp(delta.unsqueeze(-1) * A)).add_((delta * x.float()).unsqueeze(-1) * B.float()[:, None])
        y = (state * C.float()[:, None]).sum(-1) + D * x.float()
        return (y * F.silu(z.float())).to(x.dtype)


def final_norm(delta, residual, weight, eps: float, dtype: torch.dtype):
    """norm_f as transformers applies it before the LM head: fp32 on the residual stream (no cast to the
    norm's dtype first, unlike the blocks' norms), rounded to the model dtype once. ``delta`` may be
    out_proj's fp32 partial rows (parts, ..., hidden): summed and rounded as its model-dtype output is."""
    if delta.dim() == 3:  # (a prefill passes the last position's (1, hidden) row)
        delta = delta.sum(0).to(dtype)
    hidden = (residual + delta).float() if residual is not None else delta.float()
    return (weight * (hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + eps))).to(dtype)


def _blocked_scan(decay, drive, h0, block):
    """h_t = decay_t * h_{t-1} + drive_t for all t. decay, drive: (b, d, seq, n), seq % block == 0."""
    b, d, seq, n = decay.shape
    nblocks = seq // block
    decay = decay.view(b, d, nblocks, block, n)
    drive = drive.view(b, d, nblocks, block, n)
    local = torch.empty_like(drive)
    h = torch.zeros(b, d, nblocks, n, dtype=drive.dtype, device=drive.device)
    for t in range(block):  # all blocks at once, zero initial state
        h = decay[:, :, :, t] * h + drive[:, :, :, t]
        local[:, :, :, t] = h
    through = torch.cumprod(decay, dim=3)  # decay from each block's start to step t
    carry = h0.float()
    starts = []
    for k in range(nblocks):  # carry the state from block to block
        starts.append(carry)
        carry = through[:, :, k, -1] * carry + local[:, :, k, -1]
    start = torch.stack(starts, dim=2).unsqueeze(3)  # (b, d, nblocks, 1, n)
    return (local + through * start).view(b, d, seq, n)


class FusedDecodeMixin:
    """Decode through comparer's Triton kernels (mamba_decode: add+RMSNorm, in_proj and conv+x_proj in one
    kernel, then dt_proj+state update, then out_proj) instead of seven per layer; other ops as the class it
    is mixed into.
    ``decode_settings``: the kernels' launch settings (mamba_decode.DecodeSettings; None: its DEFAULT)."""

    fused_decode = True
    decode_settings = None

    def kernel_settings(self):
        from comparer.kernels import mamba_decode

        return self.decode_settings or mamba_decode.DEFAULT

    def fuses_layer(self, layer, ssm_state, clears_own_accumulator: bool) -> bool:
        """Whether one kernel runs this layer's norm, in_proj and conv (mamba_decode.norm_in_conv): not where
        the accumulator it would clear is the one it adds into (``clears_own_accumulator``: a one-layer model)."""
        from comparer.kernels import mamba_decode

        return (self.fused_decode and not clears_own_accumulator and mamba_decode.applies(layer, ssm_state)
                and mamba_decode.fuses_in_proj(layer, self.kernel_settings()))

    def decode_layer(self, layer, delta, residual, eps: float, residual_in_fp32: bool, conv_state, ssm_state,
                     time_step_rank: int, acc=None, zero=None, next_in_proj=None):
        """Three kernels (norm_in_conv, ssm_step, out_proj) where ``fuses_layer``, else
        five (add_rms, in_proj, conv_xproj, ssm_step, out_proj); the PyTorch mixer after add_rms where the
        kernels do not apply. ``zero`` (the previous layer's accumulator) is cleared on the way."""
        if not self.fused_decode:
            return super().decode_layer(layer, delta, residual, eps, residual_in_fp32, conv_state, ssm_state,
                                        time_step_rank)
        from comparer.kernels import mamba_decode

        settings = self.kernel_settings()
        own = zero is not None and acc is not None and zero.data_ptr() == acc.data_ptr()
        if acc is not None and self.fuses_layer(layer, ssm_state, clears_own_accumulator=own):
            xz, x_conv, residual = mamba_decode.norm_in_conv(delta, residual, layer.norm_w, eps, residual_in_fp32,
                                                             layer, conv_state, acc, zero, settings)
            y = mamba_decode.ssm_step(layer, xz, x_conv, ssm_state, time_step_rank, acc, settings)
            # maybe partial rows: summed next
            return mamba_decode.out_proj(y, layer.out_proj, settings, warm=next_in_proj), residual
        normed, residual = mamba_decode.add_rms(delta, residual, layer.norm_w, eps, residual_in_fp32, zero,
                                                settings=settings)
        if acc is None or not mamba_decode.applies(layer, ssm_state):
            return super().decode_mixer(layer, normed, conv_state, ssm_state, time_step_rank), residual
        xz = mamba_decode.in_proj(normed, layer.in_proj, settings)
        y = mamba_decode.decode_mixer(layer, xz, conv_state, ssm_state, time_step_rank, acc, settings)
        return mamba_decode.out_proj(y, layer.out_proj, settings, warm=next_in_proj), residual

    def final_norm(self, delta, residual, weight, eps: float, residual_in_fp32: bool, dtype: torch.dtype):
        """norm_f in one kernel that also sums out_proj's partial rows (five PyTorch kernels otherwise)."""
        if not self.fused_decode or residual is None:
            return super().final_norm(delta, residual, weight, eps, residual_in_fp32, dtype)
        from comparer.kernels import mamba_decode

        return mamba_decode.add_rms(delta, residual, weight, eps, residual_in_fp32, final=True,
                                    settings=self.kernel_settings())[0]


class KernelOps(FusedDecodeMixin, TorchOps):
    """mamba-ssm's selective scan (from a zero state, then the carry kernel) and causal-conv1d's conv for
    the prefill (CUDA only); the decode step through comparer's Triton kernels, or mamba-ssm's state
    update with ``fused_decode=False``. (TritonOps below needs neither package.)"""

    name = "mamba-ssm + causal-conv1d kernels"
    step_name = "mamba-ssm state update + causal-conv1d step"
    # W @ x^T here too: Mamba-2.8B's 32K prefill 0.98 -> 0.86 s and 0.08 GiB less peak on the H200
    # (assets/benchmarks/logs/h200-mamba-prefill-tuning.txt)
    channel_major_in_proj = True
    compiled_what = "Triton chunk-carry kernel"

    def __init__(self, fused_decode: bool = True, decode_settings=None):
        from comparer.kernels.triton import triton_available

        self.fused_decode = fused_decode and triton_available()  # else mamba-ssm's state update
        self.decode_settings = decode_settings
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update

        self._conv_fn, self._conv_update = causal_conv1d_fn, causal_conv1d_update
        self._scan_fn, self._state_update = selective_scan_fn, selective_state_update
        self.fused_norm = self._check_fused_norm()

    def prepare(self, dtype: torch.dtype, d_state: int, layer=None) -> None:
        """Compile the prefill's Triton kernel for this dtype now, not inside the first long prefill."""
        import time

        from comparer.kernels import mamba_carry

        t0 = time.perf_counter()
        mamba_carry.warm_up(dtype, d_state)
        torch.cuda.synchronize()
        self.compile_s = time.perf_counter() - t0

    def _check_fused_norm(self) -> bool:
        """Use mamba-ssm's fused add+RMSNorm (one kernel instead of ~10) if it agrees with ours."""
        try:
            from mamba_ssm.ops.triton.layer_norm import rms_norm_fn

            delta, residual = torch.randn(2, 256, device="cuda"), torch.randn(2, 256, device="cuda")
            weight = torch.rand(256, device="cuda") + 0.5
            got = rms_norm_fn(delta, weight, None, residual=residual, prenorm=True, residual_in_fp32=True, eps=1e-5)
            want = TorchOps.add_norm(self, delta, residual, weight, 1e-5, True)
            if all(torch.allclose(g, w, rtol=1e-4, atol=1e-4) for g, w in zip(got, want)):
                self._rms_norm_fn = rms_norm_fn
                return True
        except Exception:  # older or missing Triton kernels: the PyTorch form is exact
            pass
        return False

    def add_norm(self, delta, residual, weight, eps: float, residual_in_fp32: bool):
        if not self.fused_norm:
            return TorchOps.add_norm(self, delta, residual, weight, eps, residual_in_fp32)
        return self._rms_norm_fn(delta, weight, None, residual=residual, prenorm=True,
                                 residual_in_fp32=residual_in_fp32, eps=eps)

    def conv(self, x, conv_state, weight, bias):
        """The chunk from a zero left edge, then its first width - 1 outputs again from the carried inputs:
        the output stays contiguous, with no (d, seq) concatenation before the conv nor copy after it (on
        the H200 those took 0.10 s of Mamba-2.8B's 32K prefill, h200-mamba-prefill-32k-ops.txt)."""
        width = weight.shape[-1]
        head = min(width - 1, x.shape[-1])
        before = conv_state[..., 1:].to(x.dtype)
        out = self._conv_fn(x, weight, bias, activation="silu")
        x_head = torch.cat([before, x[..., :head]], dim=-1).contiguous()
        out[..., :head] = self._conv_fn(x_head, weight, bias, activation="silu")[..., width - 1:]
        last = x[..., -width:] if x.shape[-1] >= width else torch.cat([before, x], dim=-1)[..., -width:]
        return out, last

    def conv_step(self, x, conv_state, weight, bias):
        return self._conv_update(x, conv_state, weight, bias, activation="silu")

    def scan(self, u, dt, A, B, C, D, z, dt_bias, h0, block: int = 32):
        u, dt, B, C, z = (t.contiguous() for t in (u, dt, B, C, z))
        y, last = self._scan_fn(u, dt, A, B, C, D, z, dt_bias, delta_softplus=True, return_last_state=True)
        if h0 is None or not bool(h0.any()):
            return y, last.float()
        from comparer.kernels import mamba_carry

        return mamba_carry.add_initial_state(y, last.float().contiguous(), dt, A, C, z, dt_bias, h0)

    def step(self, state, x, dt, A, B, C, D, z, dt_bias):
        return self._state_update(state, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=True)


# mamba-ssm's scan only for a first chunk this long: below it its per-call host overhead (64 calls through
# an autograd Function) outweighs its faster kernel. H200, Mamba-2.8B TTFT, h200-prefill-vs-native.json:
# 512 tokens 0.0238 s with it against 0.0203 s with the Triton scan, 2K 0.0329 against 0.0321, 8K 0.1276
# against 0.1310 (between 2K and 8K not measured).
ZERO_SCAN_MIN_TOKENS = 8192


class TritonOps(FusedDecodeMixin, TorchOps):
    """Mamba-1 on any CUDA GPU with Triton alone (it ships with torch): comparer's selective scan from
    the carried state (mamba_scan), causal conv (mamba_conv) and row-wise add+RMSNorm for the prefill,
    the fused decode step of KernelOps. Why: mamba-ssm and causal-conv1d need a CUDA compiler or a
    wheel built for the exact torch, CUDA and Python (ZeroGPU has neither), and without them Mamba fell
    back to a path ten times slower than the Transformer's Triton engine beside it.

    The prefill works on chunks padded to a multiple of PAD tokens (the engine pads, see pad_to), so
    every row the kernels read is 16-byte aligned: vectorised loads whatever the prompt length."""

    name = "Triton selective scan + causal conv (no mamba-ssm)"
    compiled_what = "Triton prefill kernels (scan, conv, norm)"
    fused_norm = True
    channel_major_in_proj = True

    def __init__(self, fused_decode: bool = True, decode_settings=None, zero_state_scan: bool = True,
                 zero_scan_min_tokens: int = ZERO_SCAN_MIN_TOKENS, zero_scan_direct: bool = True):
        from comparer.kernels import mamba_scan
        from comparer.kernels.triton import triton_available

        if not triton_available():
            raise RuntimeError("Triton is not installed")
        self.fused_decode, self.decode_settings = fused_decode, decode_settings
        self.pad_to = mamba_scan.PAD
        self._zero_scan = _mamba_ssm_scan(zero_scan_direct) if zero_state_scan else None
        self.zero_scan_min_tokens = zero_scan_min_tokens
        if self._zero_scan is not None:
            self.name = (f"Triton causal conv + mamba-ssm selective scan from a zero state (a prompt's first chunk "
                         f"of {zero_scan_min_tokens:,}+ tokens; otherwise the Triton scan)")

    def prepare(self, dtype: torch.dtype, d_state: int, layer=None) -> None:
        """Compile the prefill's kernels for this dtype now, not inside the first prefill."""
        import time

        from comparer.kernels import mamba_conv, mamba_decode, mamba_scan

        device = layer.A.device if layer is not None else torch.device("cuda")
        t0 = time.perf_counter()
        # the real channel count on a GPU (DIM is a compile-time constant); the interpreter compiles nothing
        d_inner = layer.A.shape[0] if layer is not None and is_cuda(device) else 4
        mamba_scan.warm_up(dtype, d_state, device, d=d_inner)
        width, bias = (layer.conv_w.shape[-1], layer.conv_b is not None) if layer is not None else (4, True)
        mamba_conv.warm_up(dtype, width, bias, device, d=d_inner)
        rows = torch.zeros(1, 2, 64, dtype=dtype, device=device)
        mamba_decode.add_rms_rows(rows, None, torch.ones(64, dtype=dtype, device=device), 1e-5, True,
                                  self.kernel_settings())
        if is_cuda(device):
            torch.cuda.synchronize(device)
        self.compile_s = time.perf_counter() - t0

    def add_norm(self, delta, residual, weight, eps: float, residual_in_fp32: bool):
        from comparer.kernels import mamba_decode

        return mamba_decode.add_rms_rows(delta, residual, weight, eps, residual_in_fp32, self.kernel_settings())

    def chunk_mixer(self, layer, normed, conv_state, ssm_state, time_step_rank: int, valid: int | None = None,
                    from_zero: bool = False):
        """As TorchOps.chunk_mixer, every product written channel-major ((rows, cols) with cols a
        multiple of PAD), the conv and the scan run to step ``valid`` and carry the states from there."""
        from comparer.kernels import mamba_conv, mamba_scan

        xz = torch.mm(layer.in_proj, normed[0].t())  # (2 * d_inner, cols)
        d, n = layer.A.shape
        u, last = mamba_conv.conv(xz[:d], conv_state[0], layer.conv_w, layer.conv_b, valid)
        conv_state[0].copy_(last)
        xdbl = torch.mm(layer.x_proj, u)  # (dt_rank + 2n, cols)
        dt = torch.mm(layer.dt_proj, xdbl[:time_step_rank])  # (d_inner, cols)
        b, c = xdbl[time_step_rank:time_step_rank + n], xdbl[time_step_rank + n:]
        if from_zero and self._zero_scan is not None and u.is_cuda and u.shape[1] >= self.zero_scan_min_tokens:
            y = self._scan_from_zero(u, dt, layer, b, c, xz[d:], ssm_state, valid)
        else:
            y = mamba_scan.scan(u, dt, layer.A, b, c, layer.D, xz[d:], layer.dt_bias, ssm_state[0], valid)
        return F.linear(y.t(), layer.out_proj)[None]  # (1, cols, hidden)

    def _scan_from_zero(self, u, dt, layer, b, c, z, ssm_state, valid):
        """mamba-ssm's selective scan (no initial-state input, so only from zeros): 3.59 against the Triton
        scan's 3.71 ms per Mamba-2.8B layer at 32K on the H200 (h200-prefill-scan.txt). dt = -inf on the
        padding makes delta = softplus(-inf) = 0 there: decay 1, no input, so the state it returns is the
        last valid step's."""
        if valid is not None and valid < u.shape[1]:
            dt[:, valid:] = float("-inf")
        y, last = self._zero_scan(u[None], dt[None], layer.A, b[None], c[None], layer.D, z[None], layer.dt_bias,
                                  delta_softplus=True, return_last_state=True)
        ssm_state.copy_(last)
        return y[0]


def _mamba_ssm_scan(direct: bool = True):
    """mamba-ssm's selective scan where mamba-ssm is installed, else None: its CUDA forward called
    directly (``direct``) or through selective_scan_fn."""
    from comparer.kernels.available import module_available

    if not module_available("mamba_ssm"):
        return None
    try:
        import selective_scan_cuda
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except (ImportError, OSError):  # installed for another torch / CUDA: the Triton scan serves alone
        return None
    return _scan_forward(selective_scan_cuda.fwd) if direct else selective_scan_fn


def _scan_forward(fwd):
    """selective_scan_fn's forward without what inference does not need: the autograd Function (which
    saves its inputs for a backward) and einops' rearrange of B and C, host time on each of a prefill's
    64 calls. Same call and result: (y gated by z, the last state); u, dt, B, C, z with unit last stride,
    as the engine's channel-major rows are. Narrower than selective_scan_fn: z is required, B and C are
    (batch, n, seq), and the last state is always returned."""

    def scan(u, dt, A, B, C, D, z, dt_bias, delta_softplus=True, return_last_state=True):
        if z is None or B.dim() != 3 or C.dim() != 3 or not return_last_state:
            raise ValueError("the direct scan takes z, (batch, n, seq) B and C, and returns the last state")
        out, x, out_z = fwd(u, dt, A, B[:, None], C[:, None], D, z, dt_bias, delta_softplus)
        return out_z, x[:, :, -1, 1::2]  # the last state, as selective_scan_fn slices it

    return scan


class CScanOps(TorchOps):
    """TorchOps with the prefill mixer's conv and scan in compiled C (exact fp32 recurrence, no Python
    loop). The prefill runs time-major, (seq, channels), the layout the matrix products produce and
    consume, so no transposed copies are made."""

    name = "compiled C scan (CPU)"
    compiled_what = "C scan"

    def __init__(self):
        from comparer.kernels import cpu_scan

        self._kernels = cpu_scan
        self.lib = cpu_scan.compile_cpu_scan()
        if self.lib is None:
            raise RuntimeError(f"the CPU scan could not be compiled: {cpu_scan.build_error()}")
        self.compile_s = cpu_scan.build_s()

    def chunk_mixer(self, layer, normed, conv_state, ssm_state, time_step_rank: int, valid: int | None = None,
                    from_zero: bool = False):
        """One Mamba mixer over a prefill chunk. normed: (1, seq, hidden); conv_state (1, d, width) and
        ssm_state (1, d, n) are updated in place. Tensors not in fp32 take the PyTorch path. ``valid``:
        always the whole chunk here (pad_to 1)."""
        if any(t.dtype != torch.float32 for t in (normed, layer.in_proj, conv_state)):
            return super().chunk_mixer(layer, normed, conv_state, ssm_state, time_step_rank)
        seq, d = normed.shape[1], layer.A.shape[0]
        if layer.conv_w.shape[1] > 16:
            raise ValueError("the CPU conv supports kernel widths up to 16")
        xz = F.linear(normed[0], layer.in_proj)  # (seq, 2d): x and z are column halves, read in place
        u = torch.empty(seq, d)
        self._kernels.conv_silu(self.lib, xz, conv_state, layer.conv_w, layer.conv_b, u)
        dt_b_c = F.linear(u, layer.x_proj)  # (seq, rank + 2n)
        dt = F.linear(dt_b_c[:, :time_step_rank], layer.dt_proj)  # (seq, d), before bias and softplus
        y = torch.empty(seq, d)
        self._scan(u, dt, dt_b_c[:, time_step_rank:], xz[:, d:], layer, ssm_state, y)
        return F.linear(y, layer.out_proj).unsqueeze(0)

    def _scan(self, u, dt, b_c, z, layer, h, y):
        """The C scan on time-major fp32 views (row strides read from them, unit column stride):
        u, dt, z (seq, d); b_c (seq, 2n), B then C; h (d, n) updated in place; y (seq, d) written."""
        if layer.A.shape[1] > 64:
            raise ValueError("the CPU scan supports d_state up to 64")
        self._kernels.scan(self.lib, u, dt, b_c, z, layer.A, layer.D, layer.dt_bias, h, y)

    def scan(self, u, dt, A, B, C, D, z, dt_bias, h0, block: int = 32):
        """TorchOps' interface (channel-major (b, d, seq) inputs; A (d, n); h0 (b, d, n) or None), for
        tests and callers outside the prefill: transposes to the kernel's layout and back."""
        ys, lasts = [], []
        for b in range(u.shape[0]):
            h = (h0[b] if h0 is not None else torch.zeros_like(A)).float().contiguous().clone()
            rows = [t[b].float().t().contiguous() for t in (u, dt, z)]
            b_c = torch.cat([B[b].float().t(), C[b].float().t()], 1).contiguous()  # (seq, 2n)
            layer = SimpleNamespace(A=A.float().contiguous(), D=D.float().contiguous(),
                                    dt_bias=dt_bias.float().contiguous())
            y = torch.empty_like(rows[0])
            self._scan(rows[0], rows[1], b_c, rows[2], layer, h, y)
            ys.append(y.t())
            lasts.append(h)
        return torch.stack(ys).to(u.dtype), torch.stack(lasts)

