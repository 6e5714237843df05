"""The four sections of a run configuration (data, model, loss, train) as plain dataclasses, the
choices their string settings allow, and the default loss weights. Torch- and Qt-free, so that every
layer can read a configuration; :mod:`vqstudio.config` builds, validates and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEL_NORMS = ("log", "tanh", "minmax")
MEL_SCALES = ("slaney", "htk")
WINDOWS = ("hann", "hamming", "blackman", "rect")
PADDINGS = ("center", "same")
PHASE_PRIORS = ("none", "advance", "integrate")
SCHEDULES = ("constant", "cosine", "exponential")
BALANCERS = ("static", "shares")
DEVICES = ("auto", "cpu", "cuda", "mps")
ACTIVATIONS = ("elu", "silu", "leaky_relu")  # leaky_relu: slope 0.1, as HiFi-GAN


@dataclass
class DataConfig:
    """Where the audio comes from and how it is cut into training segments."""

    path: str = ""  # folder of audio files; empty means the built-in demo corpus
    segment_seconds: float = 1.0
    batch_size: int = 8
    val_fraction: float = 0.1  # share of files held back for validation
    seed: int = 0
    # background processes preparing batches ahead of the step (vqstudio/audio/prefetch.py);
    # -1: one per core beyond the two that training and the GUI keep; 0: in the training thread
    workers: int = -1


@dataclass
class ModelConfig:
    """The codec: encoder, residual VQ, attention decoder with an ISTFT head."""

    sample_rate: int = 24000
    encoder_channels: int = 32  # channels after the stem; doubled after every stride
    encoder_ratios: list[int] = field(default_factory=lambda: [2, 4, 5, 6])
    encoder_dilations: list[int] = field(default_factory=lambda: [1, 3, 9])  # residual units per stride
    activation: str = "elu"
    weight_norm: bool = False
    latent_dim: int = 64
    rvq_levels: int = 4
    codebook_size: int = 256
    codebook_dim: int = 64  # codes live here; projected from/to latent_dim when different
    ema: bool = True
    ema_decay: float = 0.99
    kmeans_init: bool = True
    dead_code_threshold: float = 1.0  # a code whose running usage count falls below this is dead
    dead_code_replace_every: int = 0  # automatic replacement every N steps; 0 means only on request
    quantizer_dropout: float = 0.0  # probability that a batch item uses only the first k levels
    # rvq (learned codebooks), rvq_factorized (DAC-style: codebook_dim-dimensional l2-normalised
    # codes, cosine lookup) or rfsq (residual FSQ: an implicit grid of prod(fsq_levels) codes, no
    # codebook loss; codebook_dim, ema, kmeans_init and dead-code replacement do not apply).
    quantizer: str = "rvq"
    gradient_estimator: str = "straight_through"  # or "rotation" (the rotation trick); not for rfsq
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 4])  # rfsq: values per dimension
    decoder_dim: int = 128
    decoder_conv_blocks: int = 4
    attention_blocks: int = 2
    attention_heads: int = 4
    n_fft: int = 960
    hop: int = 240  # must equal the product of encoder_ratios
    window: str = "hann"
    padding: str = "center"
    log_magnitude_clip: float = 4.6  # exp(4.6) ~ 100: the ISTFT head's magnitude ceiling
    # "advance": the head's phase is relative to each bin's own advance from frame to frame (a
    # constant output is a steady tone at the bin's centre, not a pulse per frame); "integrate":
    # the head predicts the advance beyond the bin's and the phase is its sum over frames (a
    # constant output is a steady tone at any frequency), for bins from integrate_from_hz up
    phase_prior: str = "none"
    integrate_from_hz: float = 0.0  # below it, with "integrate", the head's phase is direct


@dataclass
class LossConfig:
    """Which loss terms exist, their settings, and their weights (keyed by term name)."""

    mel_scales: list[int] = field(default_factory=lambda: [512, 1024, 2048])  # n_fft per scale
    mel_bins: list[int] = field(default_factory=lambda: [64, 80, 128])  # mel bands per scale
    mel_norm: str = "log"
    mel_scale: str = "slaney"
    mel_fmin: float = 0.0
    mel_fmax: float = 0.0  # 0 means Nyquist
    mrstft_fft_sizes: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    mrstft_hops: list[int] = field(default_factory=lambda: [128, 256, 512])
    mrstft_win_lengths: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    complex_stft_power: float = 0.3  # complex_stft compresses each bin's magnitude to |X|^power, 0 < power <= 1
    low_band_hz: float = 1000.0  # low_band_si_sdr compares the waveforms below this frequency (Hz)
    low_band_from_step: int = 0  # low_band_si_sdr weighs nothing before this step (the spectra first)
    adversarial: bool = False
    discriminator_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    discriminator_fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    balancer: str = "static"
    grad_share_every: int = 50  # measure each term's gradient share every N steps; 0 = never
    weights: dict[str, float] = field(default_factory=dict)

    def term_names(self) -> list[str]:
        """Every loss term name this configuration produces, in display order."""
        names = ["waveform_mse", "codebook", "commitment"]
        names += [f"mel_l1/{n}" for n in self.mel_scales]
        names += ["mrstft", "complex_stft", "low_band_si_sdr", "phase_advance"]
        if self.adversarial:
            names += ["adversarial", "feature_matching"]
        return names

    def resolved_weights(self) -> dict[str, float]:
        """Weights for every term: the configured ones over the defaults."""
        out = {name: default_weight(name) for name in self.term_names()}
        out.update({k: float(v) for k, v in self.weights.items() if k in out})
        return out


DEFAULT_WEIGHTS = {
    "waveform_mse": 1.0,
    "codebook": 1.0,
    "commitment": 0.25,
    "mrstft": 1.0,
    "complex_stft": 0.0,  # off unless a preset asks: older runs keep their losses
    "low_band_si_sdr": 0.0,  # likewise
    "phase_advance": 0.0,  # likewise
    "adversarial": 1.0,
    "feature_matching": 2.0,
}


def default_weight(name: str) -> float:
    if name.startswith("mel_l1/"):
        return 1.0
    return DEFAULT_WEIGHTS.get(name, 1.0)


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpoint cadence."""

    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    lr_gamma: float = 0.999996  # per-step decay for the exponential schedule
    total_steps: int = 100000  # horizon of the cosine schedule
    grad_clip: float = 1.0
    discriminator_lr: float = 2e-4
    log_every: int = 10  # a metrics.csv row every N steps
    heavy_every: int = 100  # histograms, spectrograms and probe audio every N steps
    validate_every: int = 500
    checkpoint_every: int = 500
    checkpoint_minutes: float = 5.0  # also autosave this often (wall clock; 0 turns it off)
    keep_checkpoints: int = 3
    max_nonfinite: int = 3  # consecutive non-finite steps before restoring the last checkpoint
    seed: int = 0
    device: str = "auto"
    cpu_threads: int = 0  # 0 means all cores but one
    amp: bool = True  # bf16 autocast on CUDA


SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
