"""A training step with every loss term weighted, under bf16 autocast: every term finite, and every
codec parameter reached by a finite gradient. Part 2 of ``gpu_check.sh``; on the CPU it runs the
same code paths (autocast with ``device_type="cpu"``), which ``tests/test_inference.py`` does.

    python benchmarks/every_term_step.py --device cuda [--preset speech-24k] [--set KEY=VALUE ...]

The trainer's own steps first (on CUDA with its bf16 autocast; the trainer leaves autocast off on
the CPU), then one more forward + every term + backward under bf16 autocast on ``--device`` with
quantizer dropout off (so every level is used), without an optimizer step, and the gradients
read: a parameter with no gradient, or a non-finite one, fails the check. Exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqstudio.config import load_preset  # noqa: E402
from vqstudio.train.losses import total  # noqa: E402
from vqstudio.train.trainer import Trainer  # noqa: E402

EVERY_TERM = ["loss.weights.waveform_mse=1.0", "loss.weights.mrstft=1.0", "loss.adversarial=true",
              "loss.weights.adversarial=1.0", "loss.weights.feature_matching=2.0",
              "loss.weights.complex_stft=1.0",
              "train.log_every=1", "train.validate_every=0", "train.checkpoint_every=0"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="speech-24k")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    overrides = [*EVERY_TERM, f"train.device={device.type}", "train.amp=true", *args.sets]
    trainer = Trainer(load_preset(args.preset, overrides), None, device=device.type)
    try:
        if device.type == "cuda":
            assert trainer.amp, "bf16 autocast is not on"
        for _ in range(args.steps):
            report = trainer.step()
        weighted = {n: w for n, w in report.weights.items() if w}
        print("weighted terms:", ", ".join(f"{n}={w:g}" for n, w in weighted.items()))
        print({n: round(v, 5) for n, v in report.terms.items()})
        missing = [n for n in weighted if n not in report.terms]
        bad = {n: v for n, v in report.terms.items() if not math.isfinite(v)}
        assert not missing, f"weighted terms not reported: {missing}"
        assert not bad, f"non-finite terms: {bad}"
        assert {"adversarial", "feature_matching", "mrstft", "waveform_mse"} <= set(weighted)

        # One more forward + backward under bf16 autocast, every level used; read the gradients.
        model = trainer.model
        model.train()
        model.quantizer.dropout = 0.0
        batch = trainer.data.batch(trainer.step_count).to(trainer.device)
        trainer.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = trainer.net(batch)
            terms = trainer.losses.terms(out, batch)
        total(terms, trainer.weights).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
            print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        no_grad = [n for n, p in named if p.grad is None]
        not_finite = [n for n, p in named if p.grad is not None and not torch.isfinite(p.grad).all()]
        print(f"{len(named)} codec parameters: {len(no_grad)} without a gradient, "
              f"{len(not_finite)} with a non-finite one")
        assert not no_grad, f"no gradient reaches: {no_grad[:10]}"
        assert not not_finite, f"non-finite gradients: {not_finite[:10]}"
    finally:
        trainer.close()
    print(f"bf16 step with every term on {device.type}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
