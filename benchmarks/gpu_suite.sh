#!/usr/bin/env bash
# The GPU checks of galchemy in one run (< 8 min on one H100/H200). Results go to ${OUT:-gpu-results}/;
# copy the figures into docs/benchmarks.md with the device named (never a figure not measured).
#   bash benchmarks/gpu_suite.sh            # from the repository root, on a machine with a GPU
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
run() {  # run NAME SECONDS CMD...: one check, its output in $OUT/NAME.txt; a failure does not stop the suite
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" | tee "$OUT/$name.txt"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.txt"
  echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/$name.txt"
}
run device 20 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"; python -c "import mamba_ssm; print(\"mamba_ssm\", mamba_ssm.__version__)" || echo "mamba_ssm not installed"'
# the test suite on the GPU machine (its CUDA-only paths: scan backends, P(k) on a cuda tensor)
run tests_cuda 150 python -m pytest -q -x tests/test_scan.py tests/test_nets.py tests/test_physics_spectra.py
# U-Net table of the talk at 256², batch 12, fp32 and bf16 (params, forward memory, step time, price)
run unets 150 python benchmarks/bench_unets.py --device cuda --size 256 --batch 12 --dtype fp32 bf16 --json "$OUT/unets.json"
# Mamba U-Net with mamba-ssm's kernels against the pure-PyTorch scan (goal: step ≤ 2× vanilla)
GALCHEMY_SCAN_BACKEND=torch run mamba_torch_scan 90 python benchmarks/bench_unets.py --device cuda --size 256 --batch 12 --blocks vanilla mamba
GALCHEMY_SCAN_BACKEND=cuda run mamba_cuda_scan 90 python benchmarks/bench_unets.py --device cuda --size 256 --batch 12 --blocks vanilla mamba
run scan 40 python benchmarks/bench_scan.py --device cuda
# P(k) throughput: CUDA against one CPU core (goal ≥ 100×)
run pk_cuda 40 python benchmarks/bench_physics.py --device cuda --maps 512
run pk_cpu 40 python benchmarks/bench_physics.py --threads 1
# training images/s and sampling seconds per map of the family configs at their own size
# (1, 2 and 4 steps: a distilled student's cost, one evaluation of the same U-Net per step; 50: the teacher's)
run step_diffusion 60 python benchmarks/bench_gpu_step.py --config configs/diffusion.yaml --device cuda --dtype fp32 bf16 --sample-steps 1 2 4 10 50 --sample-batch 32
run step_indi 40 python benchmarks/bench_gpu_step.py --config configs/indi.yaml --device cuda --dtype fp32 bf16 --sample-steps 1 --sample-batch 32
echo "results in $OUT/"
