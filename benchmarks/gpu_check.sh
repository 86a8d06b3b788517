#!/usr/bin/env bash
# One-command GPU check (issue 15, item 3): run from the repository root on a lent GPU machine,
#
#     bash benchmarks/gpu_check.sh          # with the device tool: carry [".device"]
#
# with the wheels and Fashion-MNIST prepared in .device/ (see ../shared/docs/gpu.md):
# .device/whl/*.whl and .device/data/fashion-mnist/*.gz. Results go to $OUT (./gpu_check_out
# when unset), at most 7 files, none in subfolders:
#   env.txt               nvidia-smi, versions, where the data and dense models come from
#   search_quality.log    benchmarks/search_quality.py --device cuda --budget 20000 (nsga2+ls)
#   search_quality.tar.gz its result folder (json, md, png, masks)
#   throughput.json/.log  batched evaluator masks/s and peak GPU memory (LeNet-300-100, LeNet-5)
#   pytest.log            tests/test_cuda.py (verbose; it skips without a GPU), then the rest of
#                         the suite with 8 workers
#   summary.txt           the short summary printed at the end
# Each step is bounded by `timeout` and runs whatever became of the previous one; the whole
# script stays under GPU_CHECK_BUDGET_S seconds (default 540, for a 600 s device call).
#
# Knobs (for trying the script elsewhere): GPU_CHECK_DEVICE (default cuda), GPU_CHECK_STEPS
# (default "sq engine pytest"), GPU_CHECK_SKIP_INSTALL=1 (use the current environment),
# GPU_CHECK_P300 / GPU_CHECK_P5 (populations of the throughput runs, default 1024 / 256).
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
DEVICE=${GPU_CHECK_DEVICE:-cuda}
STEPS=${GPU_CHECK_STEPS:-sq engine pytest}
BUDGET=${GPU_CHECK_BUDGET_S:-540}
SITE=${GPU_CHECK_SITE:-/tmp/site}
START=$(date +%s)
SUMMARY=()
FAILED=0

elapsed() { echo $(($(date +%s) - START)); }
note() { echo "[gpu_check $(elapsed)s] $*"; }
record() { SUMMARY+=("$1"); note "$1"; }
status_of() { # rc -> words
    case $1 in
        0) echo "ok" ;;
        124 | 137) echo "TIMED OUT (rc $1)" ;;
        *) echo "FAILED (rc $1)" ;;
    esac
}

# -- 1. packages, data and environment ---------------------------------------------------------
if [ "${GPU_CHECK_SKIP_INSTALL:-0}" != 1 ]; then
    if ! ls .device/whl/*.whl >/dev/null 2>&1; then
        echo "gpu_check: no wheels in .device/whl: prepare them (../shared/docs/gpu.md) and name .device in carry" >&2
        exit 2
    fi
    note "installing $(ls .device/whl/*.whl | wc -l) wheels into $SITE"
    if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .device/whl/*.whl >"$OUT/install.log" 2>&1; then
        cat "$OUT/install.log" >&2
        echo "gpu_check: installing the carried wheels failed" >&2
        exit 1
    fi
    rm -f "$OUT/install.log"
    export PYTHONPATH=$SITE:$ROOT
else
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d .device/data ]; then
    export MASKSEARCH_DATA=$ROOT/.device/data
fi
export MASKSEARCH_CACHE=$ROOT/benchmarks/results/dense
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

if ! "$PY" - <<'EOF'; then
import masksearch, pymoo.algorithms.moo.nsga2, deap, moocore  # noqa: F401
from masksearch import data, zoo
print("fashion-mnist from", data.locate("fashion-mnist"))
for model in ("lenet300", "lenet5"):
    path = zoo.cache_path(model, "fashion-mnist")
    assert path.is_file(), f"pinned dense model {path} is missing"
print("dense models from", zoo.cache_dir())
EOF
    echo "gpu_check: imports, data or pinned dense models missing (see above)" >&2
    exit 3
fi
if [ "${DEVICE%%:*}" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: torch sees no CUDA device" >&2
    exit 4
fi

{
    echo "# gpu_check $(date -u +%FT%TZ) on $(hostname), $(nproc) CPUs"
    echo "device: $DEVICE; repo: $(git rev-parse HEAD 2>/dev/null || echo 'no git')"
    echo "PYTHONPATH=$PYTHONPATH"
    echo "MASKSEARCH_DATA=${MASKSEARCH_DATA:-}"
    echo "MASKSEARCH_CACHE=$MASKSEARCH_CACHE"
    echo
    nvidia-smi 2>&1 || echo "(no nvidia-smi)"
    echo
    "$PY" - <<'EOF'
import importlib.metadata as md
import platform

import torch

print("python", platform.python_version(), platform.platform())
names = ("torch numpy numba scipy scikit-learn matplotlib joblib pymoo deap moocore "
         "pytest pytest-xdist pytest-timeout dask distributed").split()
for name in names:
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} (missing)")
print("torch.version.cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"gpu {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs")
    print("tf32 matmul", torch.backends.cuda.matmul.allow_tf32,
          "tf32 cudnn", torch.backends.cudnn.allow_tf32)
EOF
} >"$OUT/env.txt" 2>&1
record "env: $(grep -m1 '^gpu ' "$OUT/env.txt" || echo "device $DEVICE")"

result_line() { # pytest's closing "N passed, M failed in T s" line, without its ='s
    grep -E '(passed|failed|error|errors|skipped|deselected|no tests ran).* in [0-9.]+s' | tail -1 |
        sed -E 's/^=+ *//; s/ *=+$//'
}
wants() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# -- 2. search quality on the GPU (about 90 s on an H200) ---------------------------------------
if wants sq; then
    note "search_quality.py --device $DEVICE --budget 20000 --solvers nsga2+ls"
    t0=$(date +%s)
    timeout -k 10 130 "$PY" benchmarks/search_quality.py --device "$DEVICE" --budget 20000 \
        --solvers nsga2+ls --out "$OUT/sq" >"$OUT/search_quality.log" 2>&1
    rc=$?
    if [ -d "$OUT/sq" ]; then
        tar -czf "$OUT/search_quality.tar.gz" -C "$OUT" sq && rm -rf "$OUT/sq"
    fi
    line=$(grep -m1 'evaluations in' "$OUT/search_quality.log" | cut -c1-160)
    [ "$rc" = 0 ] || FAILED=1
    record "search_quality: $(status_of $rc) in $(($(date +%s) - t0)) s; ${line:-no run line}"
fi

# -- 3. throughput and peak memory of the batched evaluator (under a minute) --------------------
if wants engine; then
    note "evaluator throughput on $DEVICE"
    t0=$(date +%s)
    GPU_CHECK_DEVICE=$DEVICE timeout -k 10 90 "$PY" - "$OUT/throughput.json" \
        >"$OUT/throughput.log" 2>&1 <<'EOF'
"""masks/s of make_evaluator(..., device) on Fashion-MNIST's 5,000 validation images."""
import json
import os
import sys
import time
import traceback

import numpy as np
import torch

from masksearch import data, zoo
from masksearch.evaluators import make_evaluator
from masksearch.mask import Layout

device = os.environ["GPU_CHECK_DEVICE"]
cuda = device.startswith("cuda")
path = sys.argv[1]
val = data.load("fashion-mnist").val
report = {"device": device, "n_samples": len(val), "density": 0.05, "runs": []}
if cuda:
    report["gpu"] = torch.cuda.get_device_name(0)
    report["free_gib_at_start"] = torch.cuda.mem_get_info()[0] / 2**30


def run(model_name, kind, population, reps):
    row = {"model": model_name, "kind": kind, "P": population}
    try:
        model = zoo.pretrained(model_name, "fashion-mnist")
        layout = Layout.of(model)
        rng = np.random.default_rng(0)
        masks = rng.random((population, layout.n_total)) < report["density"]
        evaluator = make_evaluator(model, val, layout, kind=kind, device=device)
        evaluator(masks[:2])  # warm-up: kernels, allocator
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        best = float("inf")
        for _ in range(reps):
            started = time.perf_counter()
            found = evaluator(masks)  # returns numpy: the GPU work is finished
            best = min(best, time.perf_counter() - started)
        row.update(masks_per_s=round(population / best, 1), seconds=round(best, 4), reps=reps)
        if cuda:
            row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        for name in ("chunk_size", "batch_size", "memory_budget"):
            if hasattr(evaluator, name):
                row[name] = int(getattr(evaluator, name))
        reference = make_evaluator(model, val, layout, kind="plain", device="cpu")(masks[:4])
        row["max_loss_diff_vs_cpu_plain"] = float(np.abs(found["loss"][:4] - reference["loss"]).max())
        row["max_error_diff_vs_cpu_plain"] = float(
            np.abs(found["error"][:4] - reference["error"]).max()
        )
        del evaluator
    except Exception as error:  # record it and go on with the next run
        traceback.print_exc()
        row["failed"] = f"{type(error).__name__}: {error}"[:300]
    if cuda:
        torch.cuda.empty_cache()
    print(json.dumps(row), flush=True)
    report["runs"].append(row)
    with open(path, "w") as handle:  # after every run: a timeout keeps what was measured
        json.dump(report, handle, indent=2)


p300 = int(os.environ.get("GPU_CHECK_P300", 1024))
p5 = int(os.environ.get("GPU_CHECK_P5", 256))
run("lenet300", "batched", p300, 3)
run("lenet300", "plain", min(p300, 128), 1)
run("lenet5", "batched", p5, 2)
EOF
    rc=$?
    rows=$("$PY" - "$OUT/throughput.json" <<'EOF' 2>/dev/null
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    if "failed" in r:
        print(f"{r['model']} {r['kind']} P={r['P']}: FAILED {r['failed'][:80]}")
    else:
        print(f"{r['model']} {r['kind']} P={r['P']}: {r['masks_per_s']:.0f} masks/s"
              f", peak {r.get('peak_gib', float('nan')):.1f} GiB"
              f", |dloss| vs cpu {r['max_loss_diff_vs_cpu_plain']:.1e}")
EOF
)
    [ "$rc" = 0 ] || FAILED=1
    record "throughput: $(status_of $rc) in $(($(date +%s) - t0)) s"
    while IFS= read -r row; do [ -n "$row" ] && record "  $row"; done <<<"$rows"
fi

# -- 4. the whole test suite, 8 workers ---------------------------------------------------------
if wants pytest; then
    left=$((BUDGET - $(elapsed) - 20))
    limit=$((left < 300 ? left : 300))
    if [ "$limit" -lt 60 ]; then
        record "pytest: skipped, only ${left} s of the ${BUDGET} s budget left"
    else
        note "pytest -n 8 (limit $limit s)"
        # a copy of the pinned dense models: tests that train digits_mlp write to the cache
        cache=$(mktemp -d)
        cp "$MASKSEARCH_CACHE"/*.pt "$cache"/
        t0=$(date +%s)
        # the CUDA tests first, verbose, so the log shows each of them ran rather than skipped
        echo "### tests/test_cuda.py" >"$OUT/pytest.log"
        OMP_NUM_THREADS=4 MASKSEARCH_CACHE=$cache timeout -k 10 90 \
            "$PY" -m pytest -v --timeout 80 -rfEs --tb=short -p no:cacheprovider \
            tests/test_cuda.py >>"$OUT/pytest.log" 2>&1
        rc=$?
        last=$(result_line <"$OUT/pytest.log")
        record "test_cuda.py: $(status_of $rc) in $(($(date +%s) - t0)) s; ${last:-no result line}"
        [ "$rc" = 0 ] || FAILED=1
        # the rest of the suite. run_all.py --quick (three tests, ~5 min on its own, started
        # once per xdist worker that gets one) would only hit --timeout: steps 2-3 cover the GPU
        t0=$(date +%s)
        left=$((BUDGET - $(elapsed) - 20))
        limit=$((left < limit ? left : limit))
        quick=tests/benchmarks/test_run_all.py
        echo "### the suite, 8 workers, limit ${limit} s" >>"$OUT/pytest.log"
        # -v names every test as it ends and --session-timeout ends the session cleanly with
        # its summary: the first H200 run, killed from outside, left only dots (2026-12-04)
        OMP_NUM_THREADS=2 MASKSEARCH_CACHE=$cache timeout -k 15 $((limit + 30)) \
            "$PY" -m pytest -n 8 -v --timeout 150 --session-timeout "$limit" -rfE --tb=short \
            -p no:cacheprovider \
            --ignore=tests/test_notebooks.py --ignore=tests/test_cuda.py --durations=15 \
            --deselect "$quick::test_every_benchmark_ran_and_wrote_files_that_parse" \
            --deselect "$quick::test_quick_run_leaves_the_committed_results_alone" \
            --deselect "$quick::test_search_beats_magnitude_at_the_quick_density" \
            >>"$OUT/pytest.log" 2>&1
        rc=$?
        rm -rf "$cache"
        last=$(sed -n '/^### the suite/,$p' "$OUT/pytest.log" | result_line)
        record "pytest: $(status_of $rc) in $(($(date +%s) - t0)) s; ${last:-no result line}"
        [ "$rc" = 0 ] || FAILED=1
        while IFS= read -r line; do
            [ -n "$line" ] && record "  ${line:0:180}"
        done < <(grep -E '^(FAILED|ERROR) ' "$OUT/pytest.log" | head -40)
    fi
fi

# -- summary -------------------------------------------------------------------------------------
{
    echo "gpu_check on $DEVICE: $(elapsed) s in all (budget $BUDGET s); files in $OUT"
    printf '%s\n' "${SUMMARY[@]}"
} | tee "$OUT/summary.txt"
exit "$FAILED"
