#!/usr/bin/env bash
# The CUDA checks in one script, for a machine with an NVIDIA GPU (nothing here runs without one).
#
#     bash benchmarks/gpu_check.sh [OUTDIR]        # from the repository root, ~12 minutes
#
# 1. the codec's CUDA test (bf16 autocast forward + backward, first-k decoding);
# 2. benchmarks/every_term_step.py: bf16 training steps of speech-24k with EVERY loss term
#    weighted (waveform, codebook, commitment, three mels, MR-STFT, complex STFT, adversarial,
#    feature matching) and the discriminator step: every term finite; then one more bf16
#    forward + backward with every level used, and every codec parameter must have a finite
#    gradient (tests/test_inference.py runs the same script on the CPU with autocast "cpu");
# 3. model_speed.py --device cuda (all presets: training audio-s/s, inference real-time factor);
# 4. eager float32 vs bf16 autocast vs torch.compile + bf16 of the same training step, in one
#    run, interleaved (the issue's goal: compile + bf16 >= 2x eager float32);
# 5. a 5-minute learning_curve.py on speech-24k (metrics at the start and the end).
# Each part's output goes to OUTDIR/<n>-<name>.txt as well as the screen; a part that fails is
# reported and the others still run; the exit status is the number of failed parts.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-check}}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
failed=0

part() {  # part <n-name> <command...>
    local name=$1; shift
    echo "=== $name: $*"
    local start=$SECONDS
    if "$@" 2>&1 | tee "$OUT/$name.txt"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
        echo "=== $name: ok in $((SECONDS - start)) s"
    else
        echo "=== $name: FAILED after $((SECONDS - start)) s"
        failed=$((failed + 1))
    fi
}

"$PY" - <<'PY' || { echo "no CUDA device visible to torch: nothing to check"; exit 1; }
import torch, sys
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
sys.exit(0 if torch.cuda.is_available() else 1)
PY

part 1-codec-cuda-test "$PY" -m pytest tests/test_codec.py -q -p no:cacheprovider -k cuda -rs
part 2-bf16-step-every-term "$PY" benchmarks/every_term_step.py --device cuda --preset speech-24k \
    --set data.batch_size=4
part 3-model-speed "$PY" benchmarks/model_speed.py --device cuda
part 4-compile-vs-eager "$PY" benchmarks/model_speed.py --device cuda --compare-compile \
    --preset speech-24k --preset tiny-cpu --steps 20
part 5-learning-curve "$PY" benchmarks/learning_curve.py --preset speech-24k --minutes 5 \
    --set train.device=cuda

echo "=== $failed part(s) failed; outputs in $OUT/"
exit "$failed"
