"""Compile every Triton kernel this process has compiled, again for another GPU architecture.

Why: the Space runs on an RTX Pro 6000 Blackwell (sm_120, 99 KB of shared memory per block) that
no test machine here has, while every kernel was tuned on an H200 (sm_90, 227 KB). Triton compiles
for any target without that GPU; this records the exact specialisations a real run compiled
(signature, constants, alignment, warps, stages) through Triton's post-compile hook and builds each
for the other target, so a launch setting that cannot build or does not fit there is found here,
not by the first visitor. PDL kernels are also built with programmatic dependent launch on.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from dataclasses import dataclass

# opt-in shared memory per block, by compute capability (CUDA C programming guide, compute capabilities table)
SHARED_LIMIT_BYTES = {(8, 0): 163 * 1024, (8, 6): 99 * 1024, (8, 9): 99 * 1024, (9, 0): 227 * 1024,
                      (10, 0): 227 * 1024, (12, 0): 99 * 1024}


@dataclass
class Launch:
    """One compiled specialisation, enough to compile it again for another target."""

    fn: object  # the JITFunction
    signature: dict
    constants: dict
    attrs: dict
    num_warps: int
    num_stages: int

    @property
    def name(self) -> str:
        return self.fn.fn.__name__


@dataclass
class Built:
    name: str
    target: str
    shared_bytes: int
    registers: int | None
    spilled_bytes: int | None  # spill stores, as ptxas -v reports them


@contextlib.contextmanager
def recording():
    """Collect every kernel the code inside compiles (first use in this process) as Launch records."""
    from triton import knobs

    launches: list[Launch] = []

    def hook(*, key, repr, fn, compile, is_manual_warmup, already_compiled):
        launches.append(Launch(fn.jit_function, compile["signature"], compile["constants"], compile["configs"][0],
                               compile["num_warps"], compile["num_stages"]))
        return False

    previous = knobs.runtime.jit_post_compile_hook
    knobs.runtime.jit_post_compile_hook = hook
    try:
        yield launches
    finally:
        knobs.runtime.jit_post_compile_hook = previous


def build(launch: Launch, capability: tuple[int, int]) -> list[Built]:
    """The launch compiled for ``capability``; a kernel with a PDL constant is built with it on as well."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", capability[0] * 10 + capability[1], 32)
    variants = [(launch.constants, {})]
    pdl_key = _constant_key(launch, "PDL")
    if pdl_key is not None:
        variants = [({**launch.constants, pdl_key: False}, {}), ({**launch.constants, pdl_key: True},
                                                                {"launch_pdl": True})]
    out = []
    for constants, extra in variants:
        src = ASTSource(launch.fn, launch.signature, constants, launch.attrs)
        kernel = triton.compile(src, target=target, options={"num_warps": launch.num_warps,
                                                             "num_stages": launch.num_stages, **extra})
        registers, spilled = _resources(kernel.asm["ptx"], target.arch)
        label = launch.name + (" (PDL)" if extra else "")
        out.append(Built(label, f"sm_{target.arch}", kernel.metadata.shared, registers, spilled))
    return out


def _constant_key(launch: Launch, name: str):
    """The key of constant ``name`` in the compiled specialisation, None where the kernel has none."""
    key = (launch.fn.arg_names.index(name),) if name in launch.fn.arg_names else None
    return key if key in launch.constants else None


def _resources(ptx: str, arch: int) -> tuple[int | None, int | None]:
    """Registers per thread and spill stores (bytes), from the ptxas Triton uses for ``arch``, run with -v."""
    import re

    from triton.backends.nvidia.compiler import get_ptxas

    target = next((line.split()[1] for line in ptx.splitlines() if line.startswith(".target")), f"sm_{arch}")
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        try:
            done = subprocess.run([get_ptxas(arch).path, "-v", f"--gpu-name={target}", f.name, "-o", os.devnull],
                                  capture_output=True, text=True, timeout=120)
        except OSError:
            return None, None
    registers = re.search(r"Used (\d+) registers", done.stderr)
    spills = re.search(r"(\d+) bytes spill stores", done.stderr)
    return (int(registers.group(1)) if registers else None), (int(spills.group(1)) if spills else None)
