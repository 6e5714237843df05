"""Forking a run: `vqstudio train --from RUN[:STEP|:best] --run NEW`, run as a user runs it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch

from helpers import one_line_error, run_cli, run_clis, train_tiny_run
from vqstudio.config import load_config
from vqstudio.experiments.fork import fork_run
from vqstudio.train.checkpoint import load_checkpoint

TERMS = ["total", "waveform_mse", "codebook", "commitment", "mel_l1/256", "mel_l1/512"]


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A run trained to step 8 with checkpoints at 4 and 8."""
    return train_tiny_run(tmp_path_factory.mktemp("runs"), "parent")[0]



def test_a_fork_without_changes_continues_the_parent_exactly(parent, tmp_path):
    fork = tmp_path / "fork"
    result = run_cli("train", "--from", f"{parent}:4", "--run", str(fork), "--steps", "8")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"Forked {parent} at step 4 (step-00000004.pt) into {fork}")
    assert "no setting changed" in line and "from step 4 to 8" in result.stdout

    theirs = pd.read_csv(parent / "metrics.csv").set_index("step").loc[5:8, TERMS]
    ours = pd.read_csv(fork / "metrics.csv").set_index("step")[TERMS]
    assert ours.index.tolist() == [5, 6, 7, 8]  # the global step count goes on
    pd.testing.assert_frame_equal(ours, theirs)  # the same batches, RNG and state: the same run

    config = load_config(fork / "config.toml")
    assert config.forked_from["step"] == 4 and config.forked_from["checkpoint"] == "step-00000004.pt"
    assert config.forked_from["changed"] == {}
    assert load_config(parent / "config.toml").forked_from == {}  # an unforked run has none
    assert "forked_from" not in (parent / "config.toml").read_text()


def test_a_structural_fork_keeps_every_tensor_that_fits(parent, tmp_path):
    fork = tmp_path / "wider"
    result = run_cli("train", "--from", f"{parent}:latest", "--run", str(fork), "--steps", "9",
                     "--set", "model.codebook_size=64", "--set", "loss.mel_norm=tanh")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert "model.codebook_size 32 -> 64 (structural)" in line
    assert 'loss.mel_norm "log" -> "tanh" (live)' in line
    assert "started fresh: quantizer.levels.0.codebook" in line

    before = load_checkpoint(parent / "checkpoints" / "step-00000008.pt")
    start = load_checkpoint(fork / "checkpoints" / "step-00000008.pt")
    assert start["step"] == 8 and start["best_val"] == float("inf")
    fitting = [k for k, v in start["model"].items() if k in before["model"] and before["model"][k].shape == v.shape]
    assert len(fitting) > 0.8 * len(start["model"])
    for key in fitting:  # every tensor whose shape still fits is the parent's
        assert torch.equal(start["model"][key], before["model"][key]), key
    assert start["model"]["quantizer.levels.0.codebook"].shape[0] == 64
    assert load_checkpoint(fork / "checkpoints" / "step-00000009.pt")["step"] == 9
    saved = load_config(fork / "config.toml")
    assert saved.model.codebook_size == 64 and saved.forked_from["previous"]["model.codebook_size"] == 32


def test_a_live_change_keeps_model_and_optimizer_and_sets_the_new_values(parent, tmp_path):
    fork = fork_run(str(parent), tmp_path / "live", ["loss.weights.mrstft=2.5", "train.lr=1e-3"])
    assert "(live)" in fork.summary and fork.summary.endswith("model and optimizer state carried over.")
    before = load_checkpoint(parent / "checkpoints" / "step-00000008.pt")
    start = load_checkpoint(tmp_path / "live" / "checkpoints" / "step-00000008.pt")
    assert start["weights"]["mrstft"] == 2.5 and start["base_lr"] == 1e-3
    assert start["weights"]["commitment"] == before["weights"]["commitment"]
    for key, tensor in before["model"].items():
        assert torch.equal(start["model"][key], tensor), key
    first = before["optimizer"]["state"][0]
    assert torch.equal(start["optimizer"]["state"][0]["exp_avg"], first["exp_avg"])


def test_bad_forks_are_one_line_and_write_nothing(parent, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(parent, broken)
    ckpt = broken / "checkpoints" / "step-00000008.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    cases = [
        ([str(tmp_path / "nowhere")], "no such run folder"),
        ([f"{parent}:5"], "has no checkpoint '5'"),
        ([f"{parent}:best"], "has no checkpoint 'best'"),
        ([str(broken)], "not a readable checkpoint"),
        ([str(parent), "--set", "loss.mel_norm=bogus"], "mel_norm"),
        ([str(parent), "--set", "model.no_such_key=1"], "no key 'no_such_key'"),
    ]
    argvs = [["train", "--from", args[0], "--run", str(tmp_path / f"new{i}"), *args[1:]]
             for i, (args, _) in enumerate(cases)]
    results = run_clis(*argvs, ["train", "--from", str(parent), "--run", str(taken)])
    for (args, expected), result in zip(cases, results):
        error = one_line_error(result)
        assert expected in error, (args, error)
    assert "already exists and is not empty" in one_line_error(results[-1])
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "taken"]  # no half fork left
