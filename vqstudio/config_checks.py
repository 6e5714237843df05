"""The rules a run configuration must satisfy: :func:`check_config` raises a ConfigError naming the
setting that is wrong and how to fix it. The one copy of these rules; the CLI's ``--set``, presets,
config.toml and the app's settings editor all reach them through ``Config.validate``.
"""

from __future__ import annotations

import math

from vqstudio.config_sections import (
    ACTIVATIONS,
    BALANCERS,
    DEVICES,
    MEL_NORMS,
    MEL_SCALES,
    PADDINGS,
    PHASE_PRIORS,
    SCHEDULES,
    WINDOWS,
)
from vqstudio.errors import ConfigError


def check_config(config, source: str = "configuration") -> None:
    """Refuse a configuration whose settings cannot work, as a ConfigError naming the setting
    (prefixed by ``source``) and the fix. Every way of building one (preset, config.toml, --set,
    the settings editor) passes through here."""
    m, l, t, d = config.model, config.loss, config.train, config.data

    def bad(problem: str, fix: str) -> None:
        raise ConfigError(f"{source}: {problem}", fix)

    for name, value in (
        ("model.sample_rate", m.sample_rate),
        ("model.latent_dim", m.latent_dim),
        ("model.rvq_levels", m.rvq_levels),
        ("model.codebook_size", m.codebook_size),
        ("model.codebook_dim", m.codebook_dim),
        ("model.decoder_dim", m.decoder_dim),
        ("model.n_fft", m.n_fft),
        ("model.hop", m.hop),
        ("data.batch_size", d.batch_size),
    ):
        if value <= 0:
            bad(f"{name} = {value} must be positive", f"set {name} to a positive number")
    if not 1000 <= m.sample_rate <= 384000:
        bad(f"model.sample_rate = {m.sample_rate} is not a usable rate", "use 8000..192000")
    if not m.encoder_ratios or any(r < 1 for r in m.encoder_ratios):
        bad("model.encoder_ratios must be a list of positive strides", "e.g. [2, 4, 5, 6]")
    if math.prod(m.encoder_ratios) != m.hop:
        bad(
            f"model.hop = {m.hop} does not match the encoder, whose strides "
            f"{m.encoder_ratios} multiply to {math.prod(m.encoder_ratios)}",
            f"set model.hop = {math.prod(m.encoder_ratios)} or change model.encoder_ratios",
        )
    if m.n_fft < m.hop:
        bad(f"model.n_fft = {m.n_fft} is shorter than model.hop = {m.hop}", "use n_fft >= 2 x hop")
    if m.decoder_dim % max(m.attention_heads, 1):
        bad(
            f"model.decoder_dim = {m.decoder_dim} is not divisible by attention_heads = "
            f"{m.attention_heads}",
            "pick a head count that divides decoder_dim",
        )
    if not 0 <= m.quantizer_dropout <= 1:
        bad("model.quantizer_dropout must be within 0..1", "use e.g. 0.5")
    if not 0 < m.ema_decay < 1:
        bad("model.ema_decay must be within (0, 1)", "use e.g. 0.99")
    if not (math.isfinite(m.dead_code_threshold) and m.dead_code_threshold >= 0):
        bad(f"model.dead_code_threshold = {m.dead_code_threshold} must be a number >= 0",
            "use e.g. 0.5 (a code used less than this, on a running count, is dead; 0: none is)")
    if any(d < 1 for d in m.encoder_dilations):
        bad("model.encoder_dilations must be positive (or an empty list)", "e.g. [1, 3, 9]")
    choice(source, "model.activation", m.activation, ACTIVATIONS)
    from vqstudio.quantizer_settings import check_quantizer  # the combinations that work

    check_quantizer(m, bad)
    choice(source, "model.window", m.window, WINDOWS)
    choice(source, "model.padding", m.padding, PADDINGS)
    choice(source, "model.phase_prior", m.phase_prior, PHASE_PRIORS)
    if not (isinstance(m.integrate_from_hz, (int, float)) and 0 <= m.integrate_from_hz < m.sample_rate / 2):
        bad(f"model.integrate_from_hz = {m.integrate_from_hz} must be at least 0 and under half the "
            f"sample rate ({m.sample_rate / 2:g} Hz)",
            "use 0 (every bin's phase integrated) or e.g. 700 (direct below, where speech's waveform lives)")
    elif m.integrate_from_hz and m.phase_prior != "integrate":
        bad(f"model.integrate_from_hz = {m.integrate_from_hz:g} does nothing with "
            f"model.phase_prior = {m.phase_prior!r}",
            'set model.phase_prior = "integrate" too, or integrate_from_hz = 0')
    choice(source, "loss.mel_norm", l.mel_norm, MEL_NORMS)
    choice(source, "loss.mel_scale", l.mel_scale, MEL_SCALES)
    choice(source, "loss.balancer", l.balancer, BALANCERS)
    choice(source, "train.schedule", t.schedule, SCHEDULES)
    choice(source, "train.device", t.device, DEVICES)
    if len(l.mel_bins) != len(l.mel_scales):
        bad("loss.mel_bins must have one entry per loss.mel_scales entry", "make the lists equal")
    if not (len(l.mrstft_fft_sizes) == len(l.mrstft_hops) == len(l.mrstft_win_lengths)):
        bad("loss.mrstft_fft_sizes, _hops and _win_lengths differ in length", "make them equal")
    if not (isinstance(l.complex_stft_power, (int, float)) and 0 < l.complex_stft_power <= 1):
        bad(f"loss.complex_stft_power = {l.complex_stft_power} must be in (0, 1]",
            "use e.g. 0.3 (quiet bins weigh more) .. 1 (the plain complex spectrum)")
    nyquist = m.sample_rate / 2
    if not (isinstance(l.low_band_hz, (int, float)) and 0 < l.low_band_hz <= nyquist):
        bad(f"loss.low_band_hz = {l.low_band_hz} must be above 0 and at most half the sample rate "
            f"({nyquist:g} Hz)", "use e.g. 1000 (speech's loud band)")
    if not (isinstance(l.low_band_from_step, int) and l.low_band_from_step >= 0):
        bad(f"loss.low_band_from_step = {l.low_band_from_step} must be a whole number of steps >= 0",
            "use 0 (from the start) or the step the term should start at, e.g. 200")
    known = set(l.term_names())
    for name, weight in l.weights.items():
        if name not in known:
            bad(
                f"loss.weights has an unknown term '{name}'",
                f"known terms are {', '.join(sorted(known))}",
            )
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            bad(f"loss.weights.{name} = {weight} must be a finite number >= 0", "use e.g. 1.0")
    if not (math.isfinite(t.checkpoint_minutes) and t.checkpoint_minutes >= 0):
        bad(f"train.checkpoint_minutes = {t.checkpoint_minutes} must be >= 0",
            "use e.g. 5 (minutes between autosaves), or 0 to save only every checkpoint_every steps")
    if t.lr <= 0 or not math.isfinite(t.lr):
        bad(f"train.lr = {t.lr} must be positive", "use e.g. 3e-4")
    if not (t.grad_clip > 0 and math.isfinite(t.grad_clip)):
        bad(f"train.grad_clip = {t.grad_clip} must be positive", "use e.g. 1.0 (the largest gradient norm a step takes)")
    if len(t.betas) != 2 or not all(0 <= b < 1 for b in t.betas):
        bad(f"train.betas = {t.betas} must be two numbers in [0, 1)", "use e.g. [0.8, 0.99]")
    if d.segment_seconds * m.sample_rate < m.hop * 4:
        bad("data.segment_seconds is too short for the model", "use at least 0.25 s")
    if not 0 <= d.val_fraction < 1:
        bad("data.val_fraction must be within [0, 1)", "use e.g. 0.1")
    try:
        d.path.encode("utf-8")
    except UnicodeEncodeError:  # a name in another encoding: TOML (config.toml) cannot hold it
        shown = d.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        bad(f"data.path {shown} is not valid UTF-8, so the run's config.toml cannot record it",
            "rename the folder, or link to it under a UTF-8 name and give that link")
    if isinstance(d.workers, bool) or not isinstance(d.workers, int) or d.workers < -1:
        bad(f"data.workers = {d.workers!r} must be a whole number >= -1",
            "use -1 (follow the cores), 0 (in the training thread) or a count of processes")
    # The synthesis STFT must invert: fail here, naming the pair, not in the middle of a run.
    from vqstudio.audio.spectral import explain_stft_problem

    problem = explain_stft_problem(m.n_fft, m.hop, m.window)
    if problem:
        bad(problem, "change model.n_fft, model.hop or model.window")


def choice(source: str, name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not one of {', '.join(options)}",
            f"set {name} to one of {', '.join(options)}",
        )
