"""The A/B player: crossfades, loop wraps, pausing and loudness matching through the pure
``render``; then a real PortAudio stream on a paced null ALSA device, and the no-device and
no-library cases, each in a subprocess whose PortAudio starts under its own HOME."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from alsa_null import dropouts, run_python, write_asoundrc
from vqstudio.app.playback_engine import (
    MAX_BOOST_DB,
    PlaybackState,
    fade_frames_for,
    loudness_gains,
    prepare_buffer,
    render,
    replace_sources,
    seek_to,
    select_source,
    set_loop_region,
    set_playing,
)

SR = 16000
FADE = fade_frames_for(SR)
UNITY = {"original": 1.0, "reconstruction": 1.0}


def _state(sources: dict[str, np.ndarray], gains: dict[str, float] | None = None) -> PlaybackState:
    gains = gains or dict.fromkeys(sources, 1.0)
    return replace_sources(PlaybackState(fade_frames=FADE, channels=2), sources, gains)


def _play(
    state: PlaybackState, frames: int, block: int = 37
) -> tuple[np.ndarray, PlaybackState, list[int]]:
    """Render ``frames`` in odd-sized blocks (so fades straddle block edges); returns the mono
    output, the final state and the playhead after each block."""
    out, heads = [], []
    while frames > 0:
        n = min(block, frames)
        chunk, state = render(state, n)
        assert np.array_equal(chunk[:, 0], chunk[:, 1]), "mono must be duplicated to both channels"
        out.append(chunk[:, 0].copy())
        heads.append(state.playhead)
        frames -= n
    return np.concatenate(out), state, heads


def _constants(original: float, reconstruction: float) -> dict[str, np.ndarray]:
    return {
        "original": np.full(SR, original, np.float32),
        "reconstruction": np.full(SR, reconstruction, np.float32),
    }


def _sine(seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- render(): the pure engine ------------------------------------------------------------------


def test_fade_length_is_about_five_ms():
    assert fade_frames_for(16000) == 80
    assert fade_frames_for(48000) == 240
    assert abs(fade_frames_for(44100) / 44100 - 0.005) < 1e-4


def test_crossfade_between_constant_sources_is_continuous_and_keeps_the_playhead():
    high, low = 0.5, 0.2
    state = _state(_constants(high, low))
    state = set_playing(state, True)
    before, state, _ = _play(state, 300)
    assert np.all(before[FADE:] == np.float32(high)), "the fade-in from silence ends after one fade"

    state = select_source(state, "reconstruction")
    after, state, heads = _play(state, 400)
    assert state.playhead == 700 and heads == sorted(heads), "switching must not restart playback"

    joined = np.concatenate([before[FADE:], after])
    step = np.abs(np.diff(joined)).max()
    assert step <= (high - low) / FADE * 1.01, f"largest sample-to-sample jump {step}"
    assert joined.min() >= low - 1e-6, "no gap or dip towards zero during the crossfade"
    in_between = np.count_nonzero((after < high - 1e-6) & (after > low + 1e-6))
    assert in_between == FADE - 1, f"the fade should take {FADE} samples, took {in_between + 1}"
    assert np.all(after[FADE:] == np.float32(low))
    assert len(state.voices) == 1 and state.voices[0].name == "reconstruction"


def test_switching_back_mid_fade_turns_the_fade_round_smoothly():
    high, low = 0.5, 0.2
    state = _state(_constants(high, low))
    state = set_playing(state, True)
    _, state, _ = _play(state, 200)
    state = select_source(state, "reconstruction")
    part1, state, _ = _play(state, FADE // 3)
    state = select_source(state, "original")  # Tab pressed again before the fade ended
    part2, state, _ = _play(state, 3 * FADE)
    joined = np.concatenate([[high], part1, part2])
    assert np.abs(np.diff(joined)).max() <= (high - low) / FADE * 1.01
    assert joined.min() > low and np.all(part2[-FADE:] == np.float32(high))
    assert len(state.voices) == 1 and state.voices[0].name == "original"


@pytest.mark.parametrize("region_s", [(0.25, 0.5), (0.7, 1.0)], ids=["inside", "to-clip-end"])
def test_loop_wraps_without_a_jump(region_s):
    x = _sine(1.0, freq=350.0)
    state = set_playing(_state({"original": x}), True)
    _, state, _ = _play(state, 2 * FADE)
    start, end = int(region_s[0] * SR), int(region_s[1] * SR)
    state = set_loop_region(state, (start, end))
    assert state.loop == (start, end)
    state = seek_to(state, end - 3 * FADE)
    _, state, _ = _play(state, 2 * FADE)  # let the seek's own crossfade finish

    wrap_at = end - FADE  # the tail's crossfade into the loop start begins here
    assert state.playhead == wrap_at
    assert abs(float(x[wrap_at - 1] - x[start])) > 0.2, "a hard cut here would click"
    heard, state, heads = _play(state, 2 * (end - start))
    wraps = sum(1 for a, b in zip(heads, heads[1:]) if b < a)
    assert wraps == 2, f"expected two wraps over two loop lengths, saw {wraps}"
    assert all(start <= h < end for h in heads)
    slope = 2 * np.pi * 350.0 * 0.5 / SR  # the sine's own largest step
    step = np.abs(np.diff(heard)).max()
    assert step <= slope + 1.0 / FADE, f"step {step} at the wrap (sine's own step {slope:.3f})"
    # After the wrap's fade the output is the loop start itself.
    settled = heard[FADE : FADE + 200]
    np.testing.assert_array_equal(settled, x[start + FADE : start + FADE + 200])


def test_pause_fades_out_then_holds_the_playhead_and_play_resumes_there():
    x = np.full(SR, 0.4, np.float32)
    state = set_playing(_state({"original": x}), True)
    _, state, _ = _play(state, 500)
    state = set_playing(state, False)
    tail, state, heads = _play(state, 400)
    assert np.abs(np.diff(np.concatenate([[0.4], tail]))).max() <= 0.4 / FADE * 1.01
    assert np.all(tail[FADE:] == 0.0) and not state.voices
    assert state.playhead == 500 + FADE and heads[-1] == heads[-2], "paused playhead stands still"
    state = set_playing(state, True)
    resumed, state, _ = _play(state, 2 * FADE)
    assert resumed[0] == pytest.approx(0.4 / FADE)
    assert np.all(resumed[FADE - 1 :] == np.float32(0.4))
    assert state.playhead == 500 + 3 * FADE


def test_seek_while_playing_crossfades_to_the_new_place():
    x = _sine(1.0, freq=200.0)
    state = set_playing(_state({"original": x}), True)
    before, state, _ = _play(state, 1000)
    state = seek_to(state, 9000)
    after, state, _ = _play(state, 1000)
    joined = np.concatenate([before, after])
    assert np.abs(np.diff(joined)).max() <= 2 * np.pi * 200 * 0.5 / SR + 1.0 / FADE
    np.testing.assert_array_equal(after[FADE:], x[9000 + FADE : 10000])


def test_a_reconstruction_arriving_while_playing_fades_in_at_the_same_playhead():
    original = np.full(SR, 0.5, np.float32)
    state = _state({"original": original})
    state = select_source(set_playing(state, True), "reconstruction")
    silent, state, _ = _play(state, 300)
    assert np.all(silent == 0.0) and state.playhead == 300, "time runs on while waiting for it"

    first = np.full(SR, 0.2, np.float32)
    state = replace_sources(state, {"original": original, "reconstruction": first}, UNITY)
    arrived, state, _ = _play(state, 300)
    assert state.playhead == 600
    assert np.abs(np.diff(np.concatenate([[0.0], arrived]))).max() <= 0.2 / FADE * 1.01
    assert np.all(arrived[FADE:] == np.float32(0.2))

    better = np.full(SR, 0.3, np.float32)  # a newer reconstruction replaces the playing one
    state = replace_sources(state, {"original": original, "reconstruction": better}, UNITY)
    swapped, state, _ = _play(state, 300)
    assert np.abs(np.diff(np.concatenate([[0.2], swapped]))).max() <= 0.1 / FADE * 1.01
    assert np.all(swapped[FADE:] == np.float32(0.3)) and state.playhead == 900


def test_the_clip_end_stops_and_play_starts_again_from_the_top():
    x = np.full(1000, 0.25, np.float32)
    state = set_playing(_state({"original": x}), True)
    heard, state, _ = _play(state, 1200)
    assert not state.playing and state.playhead == 1000 and np.all(heard[1000:] == 0.0)
    state = set_playing(state, True)
    assert state.playhead == 0


def test_loudness_matching_equalises_rms_and_caps_the_boost():
    original = _sine(1.0, amplitude=0.5)
    reconstruction = _sine(1.0, amplitude=0.2)
    residual = original * 1e-3  # nearly silent: needs far more than +12 dB
    sources = {"original": original, "reconstruction": reconstruction, "residual": residual}
    gains = loudness_gains(sources)
    cap = 10 ** (MAX_BOOST_DB / 20)
    assert gains["original"] == pytest.approx(1.0)
    assert gains["reconstruction"] == pytest.approx(2.5, rel=1e-3)
    assert gains["residual"] == pytest.approx(cap)

    def heard_rms(name: str) -> float:
        state = select_source(set_playing(_state(sources, gains), True), name)
        heard, _, _ = _play(state, SR // 2, block=512)
        return float(np.sqrt(np.mean(heard[FADE:] ** 2)))

    target = heard_rms("original")
    assert heard_rms("reconstruction") == pytest.approx(target, rel=0.01)
    residual_rms = float(np.sqrt(np.mean(residual[: SR // 2] ** 2)))
    assert heard_rms("residual") == pytest.approx(residual_rms * cap, rel=0.02)


def test_prepared_buffers_are_private_mono_and_resampled_up_front():
    stereo = np.stack([_sine(0.5), _sine(0.5)])  # [C, T]
    stereo[0, 10] = np.nan
    prepared = prepare_buffer(stereo, SR, 48000)
    assert prepared.shape == (3 * stereo.shape[1],) and prepared.dtype == np.float32
    assert np.isfinite(prepared).all() and not prepared.flags.writeable
    column = _sine(0.1)[:, None]  # [T, 1]
    fitted = prepare_buffer(column, SR, SR, length=2000)
    assert fitted.shape == (2000,) and np.all(fitted[1600:] == 0.0)
    column[0, 0] = 9.0
    assert fitted[0] != 9.0, "the player keeps its own copy"


# -- a real stream on a paced null ALSA device --------------------------------------------------

_PLAY_SCRIPT = r"""
import json, time
import numpy as np
from vqstudio.app.player import ABPlayer

sr = 16000
rng = np.random.default_rng(0)
t = np.arange(4 * sr) / sr
original = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
reconstruction = original + 0.02 * rng.standard_normal(original.size).astype(np.float32)

player = ABPlayer()
result = {"available": player.available, "reason": player.unavailable_reason}
if player.available:
    player.set_clip(original, None, sr)
    player.play()
    time.sleep(0.2)  # the first buffer fills; the pacer's clock starts
    result["since"] = time.monotonic()
    player.select("reconstruction")  # not computed yet: silence, time runs on
    heads = []
    plan = ["arrive", "original", "residual", "reconstruction", "tab", "residual", "original",
            "tab"]
    for step in plan:
        time.sleep(0.1)
        heads.append(player.playhead)
        if step == "arrive":
            player.set_source_buffer("reconstruction", reconstruction)
        elif step == "tab":
            player.toggle_last()
        else:
            player.select(step)
        heads.append(player.playhead)
    time.sleep(0.05)
    heads.append(player.playhead)
    result.update(heads=heads, sources=list(player.sources), selected=player.selected)

    player.loudness_match = True
    player.set_loop(0.5, 0.7)
    loop_heads = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        loop_heads.append(player.playhead)
        wraps = sum(1 for a, b in zip(loop_heads, loop_heads[1:]) if b < a - 0.05)
        if wraps >= 3:
            break
        time.sleep(0.01)
    result.update(loop_heads=loop_heads, loop=player.loop, gains=player.gains)
    result["until"] = time.monotonic()
    player.close()
    result.update(
        callbacks=player.callbacks,
        underflows=player.underflows,
        frames_played=player.frames_played,
        callback_errors=player.callback_errors,
        rate=player.sample_rate,
    )
print(json.dumps(result))
"""


def _last_json(completed) -> dict:
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_a_real_stream_switches_sources_without_restarting_and_loops(tmp_path):
    write_asoundrc(tmp_path, "paced")
    result = _last_json(run_python(_PLAY_SCRIPT, tmp_path))
    assert result["available"], result["reason"]
    print(
        f"\nnull-device run: {result['callbacks']} callbacks, {result['frames_played']} frames "
        f"played at {result['rate']} Hz, {result['underflows']} underflows"
    )

    heads = result["heads"]
    assert heads == sorted(heads), f"the playhead went backwards across a switch: {heads}"
    assert heads[-1] > heads[0] > 0.0, "the playhead must keep advancing"
    assert set(result["sources"]) == {"original", "reconstruction", "residual"}
    assert result["selected"] == "residual"  # ... original, Tab -> residual

    loop_heads = result["loop_heads"]
    assert result["loop"] == pytest.approx((0.5, 0.7))
    inside = loop_heads[next(i for i, h in enumerate(loop_heads) if 0.5 <= h < 0.7) :]
    assert all(0.5 <= h < 0.7 for h in inside), f"left the loop region: {inside}"
    wraps = sum(1 for a, b in zip(inside, inside[1:]) if b < a - 0.05)
    assert wraps >= 2, f"the loop should have wrapped, playheads {inside}"
    assert result["gains"]["residual"] > 1.0 and result["gains"]["original"] == 1.0

    assert result["callbacks"] > 0 and result["frames_played"] > 0 and result["callback_errors"] == 0
    # Nothing reached the "sound card" late while switching, looping and loudness matching.
    assert result["until"] - result["since"] > 1.0
    assert dropouts(tmp_path, result["since"], result["until"]) == []


_STALL_SCRIPT = r"""
import json, threading, time
import numpy as np
from vqstudio.app.player import ABPlayer

player = ABPlayer()
player.set_clip(np.zeros(16000 * 4, np.float32), None, 16000)
player.play()
time.sleep(0.3)
stall = threading.Event()
player._post(lambda state: (stall.wait(0.3), state)[1])  # the callback blocks for 300 ms
time.sleep(0.8)
stalled_at = time.monotonic()
player.close()
print(json.dumps({"until": stalled_at}))
"""


def test_the_paced_device_hears_a_stalled_callback_as_a_dropout(tmp_path):
    """The dropout check above can fail: a callback held up for 300 ms is logged as one gap."""
    write_asoundrc(tmp_path, "paced")
    result = _last_json(run_python(_STALL_SCRIPT, tmp_path))
    heard = dropouts(tmp_path, 0.0, result["until"])
    # Late by the stall less what was buffered ahead of it, so by at most the stall.
    assert len(heard) == 1 and 0.05 < heard[0][1] <= 0.3, heard


_UNAVAILABLE_SCRIPT = r"""
import json, sys, ctypes.util
import numpy as np
from vqstudio.app.player import ABPlayer

results = []
for device in (None, "vqstudio-no-such-device"):
    player = ABPlayer(device)
    # Every method must be a harmless no-op.
    player.set_clip(np.zeros(1600, np.float32), np.zeros(1600, np.float32), 16000)
    player.play(); player.select("residual"); player.toggle_last(); player.toggle()
    player.seek(0.5); player.set_loop(0.1, 0.2); player.clear_loop()
    player.loudness_match = True; player.pause(); player.close(); player.close()
    results.append({"available": player.available, "reason": player.unavailable_reason,
                    "playhead": player.playhead, "playing": player.is_playing})
print(json.dumps({"players": results, "sounddevice_imported": "sounddevice" in sys.modules,
                  "find_library_after": ctypes.util.find_library("portaudio")}))
"""


def test_no_output_device_gives_a_readable_reason_not_a_crash(tmp_path):
    write_asoundrc(tmp_path, "missing")
    result = _last_json(run_python(_UNAVAILABLE_SCRIPT, tmp_path))
    default, named = result["players"]
    if default["available"]:
        pytest.skip("this machine has sound hardware, which an ALSA configuration cannot hide")
    assert default["reason"].startswith("No audio output device — ")
    assert "ALSA/PulseAudio" in default["reason"]
    assert not named["available"] and "'vqstudio-no-such-device' not found" in named["reason"]
    assert all(p["playhead"] == 0.0 and not p["playing"] for p in result["players"])


def test_a_missing_portaudio_library_gives_a_readable_reason_not_a_crash(tmp_path):
    write_asoundrc(tmp_path, "paced")
    completed = run_python(_UNAVAILABLE_SCRIPT, tmp_path, VQSTUDIO_NO_PORTAUDIO="1")
    result = _last_json(completed)
    for player in result["players"]:
        assert not player["available"]
        assert player["reason"].startswith("PortAudio library not found — install it with: ")
        if sys.platform.startswith("linux"):
            assert player["reason"].endswith("sudo apt-get install libportaudio2")
    # sounddevice's own import failed (the real OSError path), and the switch was undone after.
    assert not result["sounddevice_imported"]
    assert result["find_library_after"], "the library is really there; only the import was blinded"
