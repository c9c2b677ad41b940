"""comparer.bench with the Triton prefill scan's block settings given on the command line (used on the
H200 right after ``tune_mamba_kernels.py --scan``, in the same machine session, before the chosen
setting is written into comparer/engines/mamba_scan.py as the default).

    python scripts/bench_with_scan_blocks.py 4,64,4 --random-weights --engine fast --preset paper ...
"""

import sys

from comparer import bench
from comparer.engines import mamba_scan

if __name__ == "__main__":
    mamba_scan.BLOCK_D, mamba_scan.BLOCK_T, mamba_scan.WARPS = (int(v) for v in sys.argv[1].split(","))
    print(f"Triton scan blocks: channels {mamba_scan.BLOCK_D}, steps {mamba_scan.BLOCK_T}, warps {mamba_scan.WARPS}")
    sys.exit(bench.main(sys.argv[2:]))
