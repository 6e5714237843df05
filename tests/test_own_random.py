"""train/own_random.py: a trainer's random draws are its own (real trainers, one process)."""

from __future__ import annotations

import copy

import torch

from vqstudio.config import load_preset
from vqstudio.train.trainer import Trainer

# every step draws: k-means on the first batch, dead codes replaced each step, quantizer dropout
SETS = ["train.cpu_threads=1", "train.validate_every=0", "train.checkpoint_every=0",
        "train.log_every=1000", "loss.grad_share_every=0", "data.batch_size=2",
        "data.segment_seconds=0.5", "model.ema=true", "model.kmeans_init=true",
        "model.dead_code_replace_every=1", "model.quantizer_dropout=0.5"]


def make(seed: int) -> Trainer:
    return Trainer(load_preset("tiny-cpu", SETS + [f"train.seed={seed}"]), None, device="cpu")


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_interleaved_trainers_train_as_each_would_alone_and_leave_the_process_rng_alone():
    alone = make(0)
    for _ in range(3):
        alone.step()
    expected = parameters(alone)
    alone.close()

    a, b = make(0), make(1)
    torch.manual_seed(123)
    for _ in range(3):
        before = torch.get_rng_state()
        a.step()
        assert torch.equal(torch.get_rng_state(), before)  # the process's draws did not move
        b.step()
        torch.rand(5)  # and the process's own draws do not move the trainers'
    got = parameters(a)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert not all(torch.equal(got[k], v) for k, v in parameters(b).items() if k in got)


def test_a_checkpoint_taken_between_steps_holds_the_trainers_random_state():
    a = make(0)
    a.step()
    state = copy.deepcopy(a.state_dict())  # outside a step, as a checkpoint file would hold it
    torch.manual_seed(99)
    a.step()
    after_original = parameters(a)

    b = make(0)
    b.load_state(state)  # between steps, after construction
    torch.manual_seed(7)
    b.step()
    got = parameters(b)
    assert all(torch.equal(got[k], after_original[k]) for k in got)
    a.close(), b.close()
