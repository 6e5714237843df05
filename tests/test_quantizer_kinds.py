"""The quantizer kinds beyond plain RVQ: factorized (DAC-style) codes, residual FSQ and the
rotation trick. Each trains with the real trainer, decodes from its first k levels exactly as its
forward pass does, and, where vector-quantize-pytorch implements the same thing, agrees with it
(the test oracle: FSQ bounding, rounding and indexing; the rotation trick's value and gradient).
Settings that cannot work together are refused with the fix."""

from __future__ import annotations

import math

import pytest
import torch
from vector_quantize_pytorch import FSQ as OracleFSQ
from vector_quantize_pytorch.vector_quantize_pytorch import rotate_to as oracle_rotate_to

from helpers import tiny_config, write_corpus
from vqstudio.config import ModelConfig
from vqstudio.errors import ConfigError
from vqstudio.model.quantizer import (
    FactorizedResidualVQ,
    ResidualFSQ,
    ResidualVQ,
    build_quantizer,
)
from vqstudio.model.fsq import FSQLevel
from vqstudio.model.rotation import rotation_trick, straight_through
from vqstudio.train.trainer import Trainer

KINDS = [
    ("rvq", "straight_through"),
    ("rvq", "rotation"),
    ("rvq_factorized", "straight_through"),
    ("rvq_factorized", "rotation"),
    ("rfsq", "straight_through"),
]


def _sets(kind: str, estimator: str) -> list[str]:
    sets = [f'model.quantizer="{kind}"', f'model.gradient_estimator="{estimator}"']
    if kind == "rvq_factorized":
        sets.append("model.codebook_dim=8")
    if kind == "rfsq":
        sets.append("model.fsq_levels=[8, 4]")  # the tiny test model has 32 codes
    return sets


def _quantizer(kind: str, estimator: str = "straight_through", **kw):
    config = ModelConfig(latent_dim=12, rvq_levels=3, codebook_size=64, codebook_dim=4,
                         quantizer=kind, gradient_estimator=estimator, fsq_levels=[4, 4, 4], **kw)
    return build_quantizer(config)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=2, seconds=1.0)


@pytest.mark.parametrize("kind,estimator", KINDS)
def test_each_kind_trains_with_finite_figures_and_usage_stats(corpus, kind, estimator):
    torch.manual_seed(0)
    trainer = Trainer(tiny_config(corpus, _sets(kind, estimator) + ["train.log_every=1"]), None)
    assert type(trainer.model.quantizer).__name__ == {
        "rvq": "ResidualVQ", "rvq_factorized": "FactorizedResidualVQ", "rfsq": "ResidualFSQ"}[kind]
    before = {k: v.detach().clone() for k, v in trainer.model.encoder.state_dict().items()}
    for _ in range(3):
        report = trainer.step()
        assert not report.skipped
        assert report.terms and all(math.isfinite(v) for v in report.terms.values()), report.terms
    # The encoder learns through the quantizer, whatever the estimator.
    after = trainer.model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    stats = trainer.codebook_stats()
    levels, size = trainer.config.model.rvq_levels, trainer.config.model.codebook_size
    assert stats["usage"].shape == (levels, size) and stats["batch_usage"].shape == (levels, size)
    for key in ("entropy", "batch_entropy", "dead_fraction"):
        assert stats[key].shape == (levels,)
        assert ((stats[key] >= 0) & (stats[key] <= 1)).all(), (key, stats[key])
    assert (stats["batch_usage"].sum(1) > 0).all()  # every level counted its codes
    assert len(trainer.model.quantizer.replace_dead_codes()) == levels


@pytest.mark.parametrize("kind", ["rvq", "rvq_factorized", "rfsq"])
def test_first_k_decoding_matches_the_forward_pass_with_k_levels(kind):
    torch.manual_seed(1)
    q = _quantizer(kind).train()
    z = torch.randn(2, 12, 40)
    q(z)  # k-means initialisation where there is a codebook
    q.eval()
    codes = q.encode(z)
    assert codes.shape == (2, 3, 40) and codes.dtype == torch.int64
    assert 0 <= int(codes.min()) and int(codes.max()) < 64
    errors = []
    for k in (1, 2, 3):
        out = q(z, levels=k)
        assert torch.equal(out.codes, codes[:, :k])
        assert torch.allclose(q.decode(codes, levels=k), out.quantized, atol=1e-6)
        if kind == "rfsq":  # against the unquantized projection: each level refines the last
            exact = q.out_proj(q.in_proj(z.transpose(1, 2))).transpose(1, 2)
            errors.append(float((out.quantized - exact).detach().pow(2).mean()))
    if kind == "rfsq":
        assert errors[0] > errors[1] > errors[2], errors
    with pytest.raises(ConfigError):
        q.decode(codes[:, :2], levels=3)


@pytest.mark.parametrize("kind", ["rvq_factorized", "rfsq"])
def test_quantizer_dropout_uses_fewer_levels_in_training_only(kind):
    torch.manual_seed(2)
    q = _quantizer(kind, quantizer_dropout=1.0).train()
    z = torch.randn(16, 12, 5)
    full = q(z, levels=3).quantized.detach()
    dropped = q(z).quantized.detach()
    differs = (dropped - full).abs().amax(dim=(1, 2)) > 1e-6
    assert differs.any()  # some items stopped before the last level
    q.eval()
    assert torch.allclose(q(z).quantized, full, atol=1e-6)


def test_fsq_bounds_rounds_and_indexes_as_vector_quantize_pytorch():
    torch.manual_seed(3)
    levels = [8, 5, 4]
    ours, oracle = FSQLevel(levels), OracleFSQ(levels=levels)
    z = torch.randn(500, 3) * 3
    values = ours.quantize(z)
    assert torch.allclose(values, oracle.quantize(z), atol=1e-6)
    assert torch.equal(ours.to_index(values), oracle.codes_to_indices(values).long())
    assert torch.equal(ours.from_index(ours.to_index(values)), values)
    assert ours.to_index(values).unique().numel() > 100  # the grid is used, not a few points
    # Straight-through rounding: the gradient is the bound's own (tanh'), as the oracle's.
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    ours.quantize(a).sum().backward()
    oracle.quantize(b).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_rfsq_has_no_codebook_losses_and_counts_its_implicit_codes():
    q = _quantizer("rfsq").train()
    assert isinstance(q, ResidualFSQ) and q.codebook_size == 64
    out = q(torch.randn(2, 12, 30))
    assert out.codebook_loss.item() == 0 and out.commitment_loss.item() == 0
    assert torch.all(out.usage.sum(1) == 60)
    state = q.state_dict()
    fresh = _quantizer("rfsq")
    fresh.load_state_dict(state)
    assert torch.equal(fresh.stats()["usage"], q.stats()["usage"])
    assert fresh.stats()["usage"].sum() > 0


def test_rotation_trick_value_and_gradient_match_vector_quantize_pytorch():
    torch.manual_seed(4)
    e = torch.randn(64, 8)
    q = torch.randn(64, 8) * 2
    g = torch.randn(64, 8)
    ours_in, oracle_in = e.clone().requires_grad_(), e.clone().requires_grad_()
    ours = rotation_trick(ours_in, q)
    oracle = oracle_rotate_to(oracle_in, q)
    assert torch.equal(ours, q)  # the value is exactly the code
    assert torch.allclose(oracle, q, atol=1e-5)
    (ours * g).sum().backward()
    (oracle * g).sum().backward()
    assert torch.allclose(ours_in.grad, oracle_in.grad, atol=1e-5)
    # The gradient is rotated and scaled, not copied: lambda R^T g, with R the rotation (built
    # here as a matrix) that takes e's direction onto q's and lambda = |q| / |e|.
    u, v = e / e.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)
    w = (u + v) / (u + v).norm(dim=1, keepdim=True)
    eye = torch.eye(8).expand(64, 8, 8)
    rot = eye - 2 * w[:, :, None] * w[:, None, :] + 2 * v[:, :, None] * u[:, None, :]
    assert torch.allclose(torch.einsum("mij,mj->mi", rot, u), v, atol=1e-5)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    scale = (q.norm(dim=1) / e.norm(dim=1))[:, None]
    assert torch.allclose(ours_in.grad, scale * torch.einsum("mji,mj->mi", rot, g), atol=1e-5)
    assert not torch.allclose(ours_in.grad, g, atol=0.1)
    # An input already pointing at its code gets the straight-through direction, scaled.
    aligned = (q * 0.5).requires_grad_()
    (rotation_trick(aligned, q) * g).sum().backward()
    assert torch.allclose(aligned.grad, g * 2.0, atol=1e-5)
    st_in = e.clone().requires_grad_()
    (straight_through(st_in, q) * g).sum().backward()
    assert torch.equal(st_in.grad, g) and torch.equal(straight_through(e, q), q)


def test_factorized_codes_are_unit_vectors_found_by_cosine_similarity():
    torch.manual_seed(5)
    q = _quantizer("rvq_factorized").train()
    assert isinstance(q, FactorizedResidualVQ) and not isinstance(q, ResidualFSQ)
    z = torch.randn(3, 12, 20)
    out = q(z)
    level = q.levels[0]
    vectors = level.vectors()
    assert torch.allclose(vectors.norm(dim=1), torch.ones(64), atol=1e-5)
    e = q._embed(0, z.transpose(1, 2).reshape(-1, 12))
    best = (e @ vectors.t()).argmax(1)
    assert torch.equal(out.codes[:, 0].reshape(-1), best)
    # Rows fed to the codebook are unit vectors too, so the losses live on the sphere.
    assert out.commitment_loss.item() <= 4.0


def test_a_plain_rvq_is_still_the_default():
    assert isinstance(build_quantizer(ModelConfig()), ResidualVQ)
    assert not isinstance(build_quantizer(ModelConfig()), FactorizedResidualVQ)


@pytest.mark.parametrize(
    "sets,problem,fix",
    [
        (['model.quantizer="rfsq"', 'model.gradient_estimator="rotation"'],
         "needs a codebook", 'gradient_estimator = "straight_through"'),
        (['model.quantizer="rfsq"', "model.fsq_levels=[8, 8, 8]"],
         "give 512 codes, but model.codebook_size = 256", "model.fsq_levels = [8, 8, 4]"),
        (['model.quantizer="rfsq"', "model.fsq_levels=[16, 2, 8]"], "3 or more values", "[8, 8, 4]"),
        (['model.quantizer="rvq_factorized"'], "not below model.latent_dim", "codebook_dim = 8"),
        (['model.quantizer="fsq"'], "is not one of rvq, rvq_factorized, rfsq", "rfsq"),
        (['model.gradient_estimator="gumbel"'], "is not one of straight_through, rotation", "rotation"),
    ],
)
def test_settings_that_cannot_work_together_are_refused_with_the_fix(sets, problem, fix):
    from vqstudio.config import load_preset

    with pytest.raises(ConfigError) as info:
        load_preset("tiny-cpu", sets)
    assert problem in str(info.value) and fix in str(info.value), str(info.value)
