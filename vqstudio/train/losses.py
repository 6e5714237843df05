"""The loss terms of a training step, each a named scalar, and their weighted total.

:class:`LossSuite` turns a :class:`~vqstudio.model.codec.CodecOutput` and the target waveform into
a flat dict keyed by the names in ``config.loss.term_names()``:

- ``waveform_mse``            mean squared error of the waveforms
- ``codebook``, ``commitment`` the quantizer's own losses, passed through
- ``mel_l1/<n_fft>``          L1 between normalised mel spectrograms, one per configured scale
                              (hop ``n_fft // 4``), normalised by ``config.loss.mel_norm``
- ``mrstft``                  multi-resolution STFT loss: spectral convergence + log magnitude
- ``complex_stft``            phase-aware: compressed complex spectra at the MR-STFT resolutions
                              (:mod:`vqstudio.train.complex_spectrum_loss`)
- ``low_band_si_sdr``         phase-aware in the loud band: the SI-SDR below ``loss.low_band_hz``
                              as a loss, ``10 log10(1 + 10^(-SI-SDR / 10))`` dB
                              (:mod:`vqstudio.train.low_band_loss`)
- ``phase_advance``           the frame-to-frame phase advance at the ISTFT head's own STFT
                              (:mod:`vqstudio.train.phase_advance_loss`)
- ``adversarial``, ``feature_matching``  only when ``config.loss.adversarial`` is on

plus logged parts that carry no weight: ``mrstft/sc``, ``mrstft/logmag`` (so ``mrstft`` is their
sum) and ``mel/tanh_saturation``, the share of the *target's* mel bins (all scales) whose tanh sits
in saturation. It is reported whatever ``mel_norm`` is: under ``tanh`` it says how much of the
target the loss cannot see; under the others, how much it would lose by switching.

The weights live outside, keyed by the same names; :func:`total` applies them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Collection, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vqstudio.audio.spectral import TANH_SATURATION, MelSpectrogram, StftParams, normalize_mel
from vqstudio.config import Config
from vqstudio.errors import ConfigError
from vqstudio.train.complex_spectrum_loss import CompressedComplexLoss
from vqstudio.train.low_band_loss import LowBandSiSdrLoss
from vqstudio.train.phase_advance_loss import PhaseAdvanceLoss
from vqstudio.train.spectrum_terms import spectrum_pass, spectrum_terms
from vqstudio.train.discriminators import (
    Discriminators,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)



class SharedSpectra:
    """The complex STFTs of one step's reconstruction and target, computed once per resolution.

    The default mel scales and MR-STFT resolutions are the same STFTs (n_fft 512/1024/2048, hop
    n_fft / 4, Hann window of n_fft, centred): computing each once instead of once per term halves
    the STFT work of a step, forward and backward, and gives bit-identical loss values. Keyed by
    what the STFT computes, so ``win_length=None`` and ``win_length=n_fft`` share one entry.

    :meth:`run` makes one pass per resolution for the MR-STFT, complex and mel terms together
    (:func:`~vqstudio.train.spectrum_terms.spectrum_pass`): the magnitudes the mel terms need
    come out of it, and their gradient goes back in the same complex multiply as the others'.
    """

    def __init__(self, fake: torch.Tensor, real: torch.Tensor):
        self.fake = fake.reshape(-1, fake.shape[-1])  # [B, T]
        self.real = real.reshape(-1, real.shape[-1])
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._magnitudes: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _key(stft: StftParams) -> tuple:
        return (stft.n_fft, stft.hop, stft.win, stft.window, stft.padding)

    def get(self, stft: StftParams) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fake, real)`` complex spectra ``[B, n_bins, frames]``; the target's without a graph."""
        key = self._key(stft)
        pair = self._cache.get(key)
        if pair is None:
            with torch.no_grad():
                real = stft.stft(self.real)
            pair = self._cache[key] = (stft.stft(self.fake), real)
        return pair

    def run(self, resolutions: Sequence[StftParams], mel_stfts: Sequence[StftParams], power: float,
            *, mrstft: bool, complex_stft: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sc, logmag, complex)`` over ``resolutions`` (zeros where not asked for), computing on
        the way the magnitudes of ``mel_stfts`` (for :meth:`magnitudes`)."""
        terms = {self._key(s): s for s in resolutions}
        mels = {self._key(s): s for s in mel_stfts if self._key(s) not in self._magnitudes}
        order = list(dict.fromkeys([*(self._key(s) for s in resolutions), *mels]))
        entries = [(*self.get(terms.get(k) or mels[k]), k in terms, k in mels) for k in order]
        (sc, logmag, cx), magnitudes = spectrum_pass(entries, power, mrstft=mrstft,
                                                     complex_stft=complex_stft)
        for key, pair in zip(order, magnitudes):
            if pair is not None:
                self._magnitudes[key] = pair
        if len(terms) != len(resolutions):  # a resolution listed twice counts twice, as before
            sc, logmag, cx = spectrum_terms([self.get(s) for s in resolutions], power,
                                            mrstft=mrstft, complex_stft=complex_stft)
        return sc, logmag, cx

    def magnitudes(self, stft: StftParams) -> tuple[torch.Tensor, torch.Tensor]:
        """``(|fake|, |real|)`` ``[B, n_bins, frames]`` (unfloored; the target's without a graph)."""
        pair = self._magnitudes.get(self._key(stft))
        if pair is None:
            self.run([], [stft], 0.0, mrstft=False, complex_stft=False)
            pair = self._magnitudes[self._key(stft)]
        return pair


class MultiResolutionStftLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over resolutions.

    Defined to agree with auraloss's ``MultiResolutionSTFTLoss`` (default settings) on the same
    sizes: periodic Hann window of ``win_length`` centred in ``n_fft``; centred frames with reflect
    padding; magnitude ``sqrt(max(re^2 + im^2, 1e-8))``; spectral convergence
    ``||Y - X||_F / ||Y||_F`` over the whole batch at once (not per example); log magnitude the mean
    absolute difference of *natural* logs; each resolution's loss is ``sc + logmag`` and the result
    is the mean over resolutions. Input and target are ``[B, 1, T]``.
    """

    def __init__(self, fft_sizes: list[int], hops: list[int], win_lengths: list[int]):
        super().__init__()
        self.resolutions = [
            StftParams(n, h, w, window="hann", padding="center")
            for n, h, w in zip(fft_sizes, hops, win_lengths, strict=True)
        ]

    def forward(
        self, fake: torch.Tensor, real: torch.Tensor, spectra: SharedSpectra | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, 1, T]`` x 2 -> (spectral convergence, log magnitude), means over resolutions
        (computed by :func:`~vqstudio.train.spectrum_terms.spectrum_terms`)."""
        spectra = spectra or SharedSpectra(fake, real)
        sc, logmag, _ = spectra.run(self.resolutions, (), 1.0, mrstft=True, complex_stft=False)
        return sc, logmag


class MelLoss(nn.Module):
    """L1 between normalised mel spectrograms at one scale (hop ``n_fft // 4``)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        n_mels: int,
        norm: str,
        fmin: float = 0.0,
        fmax: float | None = None,
        scale: str = "slaney",
    ):
        super().__init__()
        self.n_fft = n_fft
        self.norm = norm
        stft = StftParams(n_fft, n_fft // 4, window="hann", padding="center")
        self.mel = MelSpectrogram(sample_rate, stft, n_mels, fmin, fmax, scale)

    def forward(
        self, fake: torch.Tensor, real: torch.Tensor, spectra: SharedSpectra | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, 1, T]`` x 2 -> (L1 loss, the target's linear mel ``[B, n_mels, frames]``)."""
        spectra = spectra or SharedSpectra(fake, real)
        fake_magnitude, real_magnitude = spectra.magnitudes(self.mel.stft_params)
        fake_mel = self.mel.from_magnitude(fake_magnitude)
        with torch.no_grad():
            real_mel = self.mel.from_magnitude(real_magnitude)
        fake_norm = normalize_mel(fake_mel, self.norm)
        return (fake_norm - normalize_mel(real_mel, self.norm)).abs().mean(), real_mel


class LossSuite(nn.Module):
    """Every loss term of the configuration; see the module docstring for the names.

    When ``config.loss.adversarial`` is on, ``self.discriminators`` holds the discriminators; give
    :meth:`discriminator_parameters` to their own optimizer (this module has no other parameters).
    """

    def __init__(self, config: Config):
        super().__init__()
        loss = config.loss
        self.term_names = loss.term_names()
        self.mel_losses = nn.ModuleList(
            [
                MelLoss(
                    config.model.sample_rate,
                    n_fft,
                    n_mels,
                    loss.mel_norm,
                    loss.mel_fmin,
                    loss.mel_fmax or None,
                    loss.mel_scale,
                )
                for n_fft, n_mels in zip(loss.mel_scales, loss.mel_bins, strict=True)
            ]
        )
        self.mrstft = MultiResolutionStftLoss(
            loss.mrstft_fft_sizes, loss.mrstft_hops, loss.mrstft_win_lengths
        )
        self.complex_stft = CompressedComplexLoss(
            loss.mrstft_fft_sizes, loss.mrstft_hops, loss.mrstft_win_lengths, loss.complex_stft_power
        )
        self.low_band = LowBandSiSdrLoss(config.model.sample_rate, loss.low_band_hz)
        self.phase_advance = PhaseAdvanceLoss(config.model.n_fft, config.model.hop, config.model.window)
        self.discriminators = (
            Discriminators(loss.discriminator_periods, loss.discriminator_fft_sizes)
            if loss.adversarial
            else None
        )
        ffts = list(loss.mel_scales) + list(loss.mrstft_fft_sizes) + [config.model.n_fft]
        ffts += list(loss.discriminator_fft_sizes) if loss.adversarial else []
        # torch.stft's reflect padding needs more than n_fft // 2 samples.
        self.min_samples = max(ffts, default=0) // 2 + 1

    def terms(
        self, out, target: torch.Tensor, *, skip: Collection[str] = (), detach: Collection[str] = ()
    ) -> dict[str, torch.Tensor]:
        """Every term and logged part for ``out`` (a CodecOutput) against ``target`` ``[B, 1, T]``.

        Each value is a scalar tensor; weighted terms keep their graph, logged parts are detached.
        Terms named in ``skip`` are not computed (their parts neither); terms in ``detach`` are
        reported without a graph, so the backward pass never runs through them (the trainer's
        choice for costly terms weighted 0).
        """
        fake = out.audio
        if fake.shape != target.shape:
            raise ValueError(f"reconstruction {tuple(fake.shape)} != target {tuple(target.shape)}")
        self._check_length(target.shape[-1])
        terms: dict[str, torch.Tensor] = {}
        # Spectra and logs in float32 even under bf16 autocast: log and norms lose too much in bf16.
        with torch.autocast(fake.device.type, enabled=False):
            fake32, real32 = fake.float(), target.float()
            terms["waveform_mse"] = F.mse_loss(fake32, real32)
            terms["codebook"] = out.codebook_loss
            terms["commitment"] = out.commitment_loss
            saturated = []
            spectra = SharedSpectra(fake32, real32)
            mels = [m.mel.stft_params for m in self.mel_losses if f"mel_l1/{m.n_fft}" not in skip]
            want_mrstft, want_complex = "mrstft" not in skip, "complex_stft" not in skip
            want_terms = want_mrstft or want_complex
            # one pass over the shared spectra for the MR-STFT, complex and mel terms
            sc, logmag, complex_value = spectra.run(
                self.mrstft.resolutions if want_terms else (), mels, self.complex_stft.power,
                mrstft=want_mrstft, complex_stft=want_complex)
            for mel_loss in self.mel_losses:
                name = f"mel_l1/{mel_loss.n_fft}"
                if name in skip:
                    continue
                terms[name], real_mel = mel_loss(fake32, real32, spectra)
                saturated.append((torch.tanh(real_mel).abs() > TANH_SATURATION).float().mean())
            parts = {}
            if want_terms:
                if want_mrstft:
                    terms["mrstft"] = sc + logmag
                    parts = {"mrstft/sc": sc.detach(), "mrstft/logmag": logmag.detach()}
                if want_complex:
                    terms["complex_stft"] = complex_value
            if "low_band_si_sdr" not in skip:
                terms["low_band_si_sdr"] = self.low_band(fake32, real32)
            if "phase_advance" not in skip:
                terms["phase_advance"] = self.phase_advance(fake32, real32, spectra)
            terms.update(parts)
        if self.discriminators is not None and not {"adversarial", "feature_matching"} <= set(skip):
            with _frozen(self.discriminators):
                with torch.no_grad():
                    real_judged = self.discriminators(target)
                fake_judged = self.discriminators(fake)
            terms["adversarial"] = generator_adversarial_loss(fake_judged)
            terms["feature_matching"] = feature_matching_loss(real_judged, fake_judged)
        if saturated:
            terms["mel/tanh_saturation"] = torch.stack(saturated).mean()
        for name in detach:
            if name in terms:
                terms[name] = terms[name].detach()
        return terms

    def set_mel_norm(self, norm: str) -> None:
        """Normalise every mel scale's spectrograms by ``norm`` from the next step on (a live
        setting: the filterbanks and STFTs stay; only the normalisation of both sides changes)."""
        for mel_loss in self.mel_losses:
            mel_loss.norm = norm

    def set_low_band_hz(self, hz: float) -> None:
        """Cut ``low_band_si_sdr``'s band at ``hz`` from the next step on (a live setting)."""
        self.low_band.cutoff_hz = float(hz)

    def logged_parts(self) -> list[str]:
        """Names of the unweighted parts :meth:`terms` reports beside the terms (metric columns)."""
        parts = ["mrstft/sc", "mrstft/logmag"]
        return parts + (["mel/tanh_saturation"] if len(self.mel_losses) else [])

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """The discriminators' parameters (empty when loss.adversarial is off)."""
        return [] if self.discriminators is None else list(self.discriminators.parameters())

    def discriminator_state_dict(self) -> dict[str, torch.Tensor]:
        """The discriminators' weights, for checkpoints (empty when loss.adversarial is off)."""
        return {} if self.discriminators is None else self.discriminators.state_dict()

    def load_discriminator_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if self.discriminators is not None:
            self.discriminators.load_state_dict(state)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Least-squares loss of the discriminators on ``real`` and ``fake`` ``[B, 1, T]``.

        ``fake`` is detached here, so the codec never receives this loss's gradient.
        """
        if self.discriminators is None:
            raise ConfigError(
                "the discriminator loss was asked for but loss.adversarial is off",
                "set loss.adversarial = true",
            )
        self._check_length(real.shape[-1])
        return discriminator_adversarial_loss(
            self.discriminators(real), self.discriminators(fake.detach())
        )

    def _check_length(self, samples: int) -> None:
        if samples < self.min_samples:
            raise ConfigError(
                f"training segments of {samples} samples are too short for the loss FFT sizes "
                f"(need at least {self.min_samples})",
                "lengthen data.segment_seconds or use smaller loss.mel_scales / mrstft_fft_sizes",
            )


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Run ``module`` without recording gradients for its parameters (they still flow to inputs).

    The generator's adversarial terms must not leave gradients in the discriminators, and skipping
    them saves their cost.
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """``sum(weights[n] * terms[n])`` over the weighted names; logged parts carry no weight.

    A name weighted above zero but missing from ``terms`` is an error (a typo would otherwise drop
    the term silently); a zero weight on a missing term is ignored.
    """
    result = None
    for name, weight in weights.items():
        if name not in terms:
            if weight:
                raise KeyError(f"loss weight '{name}' has no term; terms are {sorted(terms)}")
            continue
        part = float(weight) * terms[name]
        result = part if result is None else result + part
    if result is None:
        raise ValueError("no loss term is weighted")
    return result
