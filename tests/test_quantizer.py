"""Residual VQ: straight-through gradients, the two losses, EMA updates, k-means initialisation,
dead-code replacement that survives the next EMA update, quantizer dropout, usage statistics and
checkpoint round trips."""

from __future__ import annotations

import math

import pytest
import torch

from vqstudio.errors import ConfigError
from vqstudio.model.quantizer import Codebook, ResidualVQ, dead_fraction, normalised_entropy


def _rvq(**kw) -> ResidualVQ:
    args = dict(input_dim=8, levels=3, codebook_size=16, codebook_dim=8)
    args.update(kw)
    dims = [args.pop(k) for k in ("input_dim", "levels", "codebook_size", "codebook_dim")]
    return ResidualVQ(*dims, **args)


def test_shapes_codes_and_batch_usage():
    torch.manual_seed(0)
    rvq = _rvq(input_dim=12, codebook_dim=4).train()
    z = torch.randn(2, 12, 10)
    out = rvq(z)
    assert out.quantized.shape == (2, 12, 10)
    assert out.codes.shape == (2, 3, 10) and out.codes.dtype == torch.int64
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < 16
    assert out.usage.shape == (3, 16)
    assert torch.all(out.usage.sum(1) == 20)  # every vector counted once per level
    assert out.levels_used == 3
    assert out.codebook_loss.shape == () and out.commitment_loss.shape == ()
    # Each level quantizes what the previous ones left: the error shrinks level by level.
    plain = _rvq().train()
    z = torch.randn(4, 8, 25)
    plain(z)  # k-means on every level
    plain.eval()
    errors = [(plain.decode(plain.encode(z), levels=k) - z).pow(2).mean() for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_losses_are_the_squared_distance_and_gradients_go_where_they_should():
    torch.manual_seed(0)
    rvq = _rvq(levels=1, ema=False, kmeans_init=False).train()
    z = torch.randn(3, 8, 5, requires_grad=True)
    out = rvq(z)
    code = rvq.levels[0].codebook[out.codes[:, 0]]  # [B, N, D]
    expected = (z.detach().transpose(1, 2) - code.detach()).pow(2).mean()
    assert torch.allclose(out.codebook_loss, expected) and torch.allclose(out.commitment_loss, expected)

    # Commitment pulls the encoder only; the codebook loss pulls the codes only.
    (g_z,) = torch.autograd.grad(out.commitment_loss, z, retain_graph=True)
    assert g_z.abs().sum() > 0
    codebook = rvq.levels[0].codebook
    assert torch.autograd.grad(out.commitment_loss, codebook, allow_unused=True, retain_graph=True)[0] is None
    g_code = torch.autograd.grad(out.codebook_loss, rvq.levels[0].codebook, retain_graph=True)[0]
    assert g_code.abs().sum() > 0
    assert out.codebook_loss.requires_grad
    # Straight-through: without projections the output's gradient reaches z unchanged.
    (g_st,) = torch.autograd.grad(out.quantized.sum(), z)
    assert torch.equal(g_st, torch.ones_like(z))


def test_ema_codebook_gets_no_gradient_but_its_loss_is_reported():
    torch.manual_seed(0)
    rvq = _rvq(ema=True).train()
    out = rvq(torch.randn(2, 8, 30, requires_grad=True))
    assert out.codebook_loss.item() > 0
    assert not out.codebook_loss.requires_grad
    assert out.commitment_loss.requires_grad
    assert all("codebook" not in name for name, _ in rvq.named_parameters())


def test_straight_through_passes_projections():
    torch.manual_seed(0)
    rvq = _rvq(input_dim=12, codebook_dim=4).train()
    z = torch.randn(2, 12, 6, requires_grad=True)
    rvq(z).quantized.pow(2).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rvq.in_proj.parameters())


def test_ema_update_moves_codes_towards_their_assigned_vectors():
    torch.manual_seed(0)
    book = Codebook(4, 2, ema=True, decay=0.8, kmeans_init=False)
    start = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    book.set_codes_(torch.arange(4), start, torch.full((4,), 2.0))
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [9.0, 1.0]])
    codes = book.nearest(x)
    assert codes.tolist() == [0, 0, 1]
    book.update_(x, codes)
    # code = (d * n * c + (1 - d) * sum) / (d * n + (1 - d) * count)
    want0 = (0.8 * 2 * start[0] + 0.2 * x[:2].sum(0)) / (0.8 * 2 + 0.2 * 2)
    want1 = (0.8 * 2 * start[1] + 0.2 * x[2]) / (0.8 * 2 + 0.2 * 1)
    assert torch.allclose(book.codebook[0], want0) and torch.allclose(book.codebook[1], want1)
    assert (book.codebook[1] - x[2]).norm() < (start[1] - x[2]).norm()
    assert torch.equal(book.codebook[2:], start[2:])  # unassigned codes stay put
    # The running sums stay consistent with the codes.
    assert torch.allclose(book.embed_sum / book.cluster_size[:, None], book.codebook)


def test_kmeans_initialisation_finds_the_clusters_and_is_flagged_for_checkpoints():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0, 0], [-5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, -5.0, 0, 0]])
    x = (centres[:, None, :] + 0.1 * torch.randn(4, 50, 4)).reshape(-1, 4)
    rvq = _rvq(input_dim=4, levels=1, codebook_size=4, codebook_dim=4, ema=True, kmeans_init=True).train()
    assert not rvq.levels[0].ready
    rvq(x.t().unsqueeze(0))  # [1, 4, 200]
    codes = rvq.levels[0].codebook
    nearest_code = torch.cdist(centres, codes).min(1).values
    assert torch.all(nearest_code < 0.1)
    assert bool(rvq.levels[0].initialised)
    assert torch.allclose(rvq.levels[0].cluster_size.sum(), torch.tensor(200.0))

    restored = _rvq(input_dim=4, levels=1, codebook_size=4, codebook_dim=4, ema=True, kmeans_init=True)
    restored.load_state_dict(rvq.state_dict())
    assert restored.levels[0].ready  # a resumed run does not re-initialise its codes
    # A trainer that rolls buffers back to before the first step gets k-means again.
    with torch.no_grad():
        rvq.levels[0].initialised.copy_(torch.tensor(False))
    assert not rvq.levels[0].ready


def _dead_code_setup(decay: float = 0.9) -> tuple[Codebook, torch.Tensor]:
    """Four codes; code 3 used to be popular at (5, 5) and has died (count 0.5 < threshold 1)."""
    book = Codebook(4, 2, ema=True, decay=decay, kmeans_init=False, dead_threshold=1.0)
    live = torch.tensor([[0.0, 0.0], [0.0, -5.0], [-5.0, -5.0]])
    book.set_codes_(torch.arange(3), live, torch.full((3,), 10.0))
    book.set_codes_(torch.tensor([3]), torch.tensor([[5.0, 5.0]]), torch.tensor([0.5]))
    return book, live


def _next_batch(new: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Vectors at every live code, and two at the replacement vector."""
    return torch.cat([live, new.expand(2, 2) + torch.tensor([[0.01, 0.0], [-0.01, 0.0]])])


def _survives_next_update(book: Codebook, new: torch.Tensor, live: torch.Tensor) -> bool:
    x = _next_batch(new, live)
    codes = book.nearest(x)
    assert codes[-2:].tolist() == [3, 3], "the replaced code must win its own vectors"
    book.update_(x, codes)
    return bool((book.codebook[3] - new).norm() < 0.05)


def test_replaced_dead_code_survives_the_next_ema_update():
    book, live = _dead_code_setup()
    new = torch.tensor([-5.0, 5.0])
    assert book.replace_dead_(new[None]) == 1
    assert torch.equal(book.codebook[3], new)
    assert book.cluster_size[3] >= book.dead_threshold  # alive again
    assert torch.allclose(book.embed_sum[3], new * book.cluster_size[3])
    assert _survives_next_update(book, new, live)


def test_naive_replacement_is_undone_by_the_next_ema_update():
    # The same check on a replacement that writes only the code and leaves its running count and
    # sum alone: the next EMA update drags it back towards the old (5, 5). This is what the test
    # above guards against, and proves that test can fail.
    book, live = _dead_code_setup()
    new = torch.tensor([-5.0, 5.0])
    with torch.no_grad():
        book.codebook[3] = new
    assert not _survives_next_update(book, new, live)
    assert (book.codebook[3] - torch.tensor([5.0, 5.0])).norm() < (book.codebook[3] - new).norm()


def test_dead_codes_are_replaced_from_recent_residuals():
    torch.manual_seed(0)
    rvq = _rvq(levels=2, codebook_size=32, ema=True, kmeans_init=False, dead_code_threshold=1.0)
    rvq.train()
    for _ in range(3):
        rvq(torch.randn(2, 8, 20))
    before = rvq.stats()["dead_fraction"]
    assert torch.all(before > 0)
    replaced = rvq.replace_dead_codes()
    assert len(replaced) == 2 and all(n > 0 for n in replaced)
    after = rvq.stats()["dead_fraction"]
    assert torch.all(after == 0)
    level = rvq.levels[0]
    recent = level.recent[: int(level.recent_filled)]
    replaced_rows = level.codebook[level.cluster_size == level.reset_count]
    assert replaced_rows.shape[0] == replaced[0]
    # Each new code is one of the recent residuals of that level (or a nudged copy of one).
    distance = (replaced_rows[:, None] - recent[None]).norm(dim=-1)
    assert torch.all(distance.min(1).values < 0.1)


def test_replacement_can_draw_from_given_latents():
    torch.manual_seed(0)
    rvq = _rvq(levels=1, codebook_size=8, ema=True, kmeans_init=False).eval()
    latents = torch.randn(1, 8, 30) + 100.0  # far from every initial code
    assert rvq.replace_dead_codes(latents) == [8]  # nothing was ever used: all dead
    rows = latents[0].t()
    distance = (rvq.levels[0].codebook[:, None] - rows[None]).norm(dim=-1)
    assert torch.all(distance.min(1).values < 1e-4)


def test_quantizer_dropout_uses_fewer_levels_in_training_and_all_in_eval():
    torch.manual_seed(0)
    rvq = _rvq(levels=4, ema=False, kmeans_init=False, dropout=1.0)
    z = torch.randn(16, 8, 3)
    rvq.train()
    out = rvq(z)
    used = []
    for b in range(16):
        matches = [
            k for k in range(1, 5)
            if torch.allclose(rvq.decode(out.codes[b : b + 1], levels=k), out.quantized[b : b + 1],
                              atol=1e-5)
        ]
        assert matches, f"item {b} is not the sum of any first-k levels"
        used.append(matches[0])
    assert min(used) < 4 and len(set(used)) > 1
    rvq.eval()
    out = rvq(z)
    assert torch.allclose(rvq.decode(out.codes), out.quantized, atol=1e-6)
    # An explicit level count overrides dropout in training too.
    rvq.train()
    out = rvq(z, levels=4)
    assert torch.allclose(rvq.decode(out.codes), out.quantized, atol=1e-6)


def test_decode_first_k_levels_equals_forward_with_k_levels():
    torch.manual_seed(0)
    rvq = _rvq(levels=4, input_dim=12, codebook_dim=6).train()
    z = torch.randn(2, 12, 7)
    rvq(z)  # k-means init and one EMA step
    rvq.eval()
    codes = rvq.encode(z)
    for k in range(1, 5):
        out = rvq(z, levels=k)
        assert out.levels_used == k and out.codes.shape == (2, k, 7)
        assert torch.equal(out.codes, codes[:, :k])
        assert torch.allclose(rvq.decode(codes, levels=k), out.quantized, atol=1e-6)
        assert torch.all(out.usage[k:] == 0)
    with pytest.raises(ConfigError, match="levels = 5"):
        rvq(z, levels=5)
    with pytest.raises(ConfigError, match="levels = 3"):
        rvq.decode(codes[:, :2], levels=3)


def test_usage_statistics_on_a_hand_made_case():
    rvq = _rvq(input_dim=2, levels=1, codebook_size=8, codebook_dim=2, ema=True, ema_decay=0.5,
               kmeans_init=False, dead_code_threshold=1.0).train()
    far = torch.tensor([[100.0 * (i + 1), 0.0] for i in range(8)])
    far[0] = 0.0
    rvq.levels[0].set_codes_(torch.arange(8), far, torch.zeros(8))
    z = 0.01 * torch.randn(1, 2, 100)  # every vector goes to code 0
    out = rvq(z)
    assert out.usage[0, 0] == 100 and out.usage[0, 1:].sum() == 0
    stats = rvq.stats()
    assert stats["usage"].shape == (1, 8)
    assert stats["usage"][0, 0] == pytest.approx(50.0)  # 0.5 * 0 + 0.5 * 100
    assert stats["batch_usage"][0, 0] == 100
    assert stats["entropy"][0] == pytest.approx(0.0, abs=1e-6)
    assert stats["batch_entropy"][0] == pytest.approx(0.0, abs=1e-6)
    assert stats["dead_fraction"][0] == pytest.approx(7 / 8)

    assert normalised_entropy(torch.ones(8)).item() == pytest.approx(1.0)
    half = normalised_entropy(torch.tensor([3.0, 3.0, 0.0, 0.0])).item()
    assert half == pytest.approx(math.log(2) / math.log(4))
    assert normalised_entropy(torch.zeros(4)).item() == 0.0
    assert dead_fraction(torch.tensor([0.0, 0.5, 1.0, 2.0]), 1.0).item() == 0.5


def test_eval_mode_changes_no_statistics():
    torch.manual_seed(0)
    rvq = _rvq().train()
    rvq(torch.randn(2, 8, 10))
    snapshot = {k: v.clone() for k, v in rvq.state_dict().items()}
    rvq.eval()
    rvq(torch.randn(2, 8, 10))
    rvq.encode(torch.randn(2, 8, 10))
    assert all(torch.equal(snapshot[k], v) for k, v in rvq.state_dict().items())


def test_state_dict_round_trip_keeps_codes_and_statistics():
    torch.manual_seed(0)
    rvq = _rvq(input_dim=12, codebook_dim=6).train()
    for _ in range(3):
        rvq(torch.randn(2, 12, 10))
    state = rvq.state_dict()
    for key in ("levels.0.codebook", "levels.0.cluster_size", "levels.0.embed_sum",
                "levels.0.initialised", "levels.0.recent", "levels.0.recent_filled"):
        assert key in state
    other = _rvq(input_dim=12, codebook_dim=6)
    other.load_state_dict(state)
    for key, value in other.state_dict().items():
        assert torch.equal(value, state[key]), key
    z = torch.randn(2, 12, 10)
    rvq.eval(), other.eval()
    assert torch.equal(rvq.encode(z), other.encode(z))
    for key in ("usage", "entropy", "dead_fraction"):
        assert torch.equal(rvq.stats()[key], other.stats()[key])
