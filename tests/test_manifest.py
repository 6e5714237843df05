"""Manifests: text and JSONL lists of paths with offsets and durations, and Lhotse recording and
cut manifests as the lhotse package writes them (it is the oracle here: our reader must
understand its files), with odd names; bad lines and unusable entries are named."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
import soundfile as sf

from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.errors import NoAudioError, UserError

RATE = 16000


@pytest.fixture
def audio(tmp_path):
    """Three files with constant levels, one with a name that is not valid UTF-8."""
    root = tmp_path / "audio"
    root.mkdir()
    paths = []
    for k, name in enumerate([b"one file.wav", b"caf\xe9.wav", b"three.flac"]):
        tmp = tmp_path / f"t{k}.wav"
        sf.write(tmp, np.full(RATE * (k + 1), 0.1 * (k + 1), np.float32), RATE,
                 subtype="FLOAT" if k < 2 else None, format=None if k < 2 else "FLAC")
        path = os.fsencode(root) + b"/" + name
        os.rename(tmp, path)
        paths.append(os.fsdecode(path))
    return paths


def test_a_text_list_with_offsets_durations_comments_and_bad_entries(audio, tmp_path):
    listing = tmp_path / "audio" / "list.txt"
    lines = [
        b"# my corpus",
        b"one file.wav",  # relative to the list
        os.fsencode(audio[1]) + b"\t0.25\t0.5",
        os.fsencode(audio[2]) + b"\t1.0",
        b"missing.wav",
        os.fsencode(audio[0]) + b"\t5.0\t1.0",  # starts after the end
        b"",
    ]
    listing.write_bytes(b"\n".join(lines))
    corpus = scan_corpus(listing, RATE)
    assert [f.path for f in corpus.files] == [audio[0], audio[1], audio[2]]
    assert corpus.spans == [(0, RATE), (RATE // 4, 3 * RATE // 4), (RATE, 3 * RATE)]
    reasons = dict(corpus.skipped)
    assert "does not exist" in reasons[str(tmp_path / "audio" / "missing.wav")]
    assert "line 6 asks for 5 s onwards" in reasons[audio[0]]
    corpus.report().encode("utf-8")
    levels = np.unique(SegmentSampler(corpus, RATE, 1000, 0).batch(0, 16).numpy().round(4))
    assert np.isin(levels, np.float32([0.1, 0.2, 0.3])).all()


def test_jsonl_with_path_or_audio_filepath(audio, tmp_path):
    manifest = tmp_path / "m.jsonl.gz"
    with gzip.open(manifest, "wt") as fh:
        fh.write(json.dumps({"path": audio[0], "duration": 0.5}) + "\n")
        fh.write(json.dumps({"audio_filepath": audio[2], "offset": 2.0}) + "\n")
    corpus = scan_corpus(manifest, RATE)
    assert corpus.spans == [(0, RATE // 2), (2 * RATE, 3 * RATE)]


@pytest.mark.parametrize("text,problem", [
    (b'{"duration": 1.0}\n', 'line 1 .* has no "path"'),
    (b'{"path": "a.wav", "offset": -1}\n', "line 1 .* offset -1"),
    (b"not json\n", "line 1 .* not valid JSON"),
])
def test_a_bad_line_is_named(tmp_path, text, problem):
    manifest = tmp_path / "bad.jsonl"
    manifest.write_bytes(text)
    with pytest.raises(UserError, match=problem):
        scan_corpus(manifest, RATE)


def test_a_manifest_of_nothing_usable(tmp_path):
    manifest = tmp_path / "gone.txt"
    manifest.write_text("a.wav\nb.wav\n")
    with pytest.raises(NoAudioError, match="none of the 2 audio files"):
        scan_corpus(manifest, RATE)


def test_lhotse_recordings_and_cuts_as_lhotse_writes_them(audio, tmp_path):
    import lhotse  # a dev dependency: the oracle for the format
    audio = [audio[0], audio[2]]  # lhotse itself cannot open a name that is not valid UTF-8
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(path, recording_id=f"r{k}") for k, path in enumerate(audio)
    )
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    corpus = scan_corpus(tmp_path / "recordings.jsonl.gz", RATE)
    assert sorted(f.path for f in corpus.files) == sorted(audio)
    assert sorted(corpus.spans) == sorted((0, r.num_samples) for r in recordings)

    cuts = lhotse.CutSet.from_manifests(recordings=recordings).cut_into_windows(duration=0.75)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    corpus = scan_corpus(tmp_path / "cuts.jsonl.gz", RATE)
    expected = sorted(
        (c.recording.sources[0].source, round(c.start * RATE), round((c.start + c.duration) * RATE))
        for c in cuts
    )
    assert sorted((f.path, a, b) for f, (a, b) in zip(corpus.files, corpus.spans)) == expected
    # a cut reads what lhotse itself loads for it
    cut = next(c for c in cuts if c.start > 0)
    index = next(i for i, (f, (a, _)) in enumerate(zip(corpus.files, corpus.spans))
                 if f.path == cut.recording.sources[0].source and a == round(cut.start * RATE))
    sampler = SegmentSampler(corpus, RATE, 64, 0)
    np.testing.assert_allclose(sampler._read(index, 0), cut.load_audio()[0, :64], atol=1e-6)


def test_lhotse_sources_other_than_files_are_named_and_skipped(audio, tmp_path):
    manifest = tmp_path / "recordings.jsonl"
    rows = [
        {"id": "web", "sources": [{"type": "url", "channels": [0], "source": "https://x/a.wav"}],
         "sampling_rate": RATE, "num_samples": RATE, "duration": 1.0},
        {"id": "ok", "sources": [{"type": "file", "channels": [0], "source": audio[0]}],
         "sampling_rate": RATE, "num_samples": RATE, "duration": 1.0},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = scan_corpus(manifest, RATE)
    assert [f.path for f in corpus.files] == [audio[0]]
    assert corpus.skipped[0][0] == "web" and "url source" in corpus.skipped[0][1]


def test_links_spaces_and_link_loops_in_a_list(audio, tmp_path):
    """A linked file is read through its link; a loop of links is named and skipped."""
    root = tmp_path / "audio"
    os.symlink(audio[2], root / "linked three.flac")
    os.symlink(root / "loop b.wav", root / "loop a.wav")
    os.symlink(root / "loop a.wav", root / "loop b.wav")
    listing = root / "with links.txt"
    listing.write_text("linked three.flac\nloop a.wav\none file.wav\n")
    corpus = scan_corpus(listing, RATE)
    assert [f.path for f in corpus.files] == [str(root / "linked three.flac"), audio[0]]
    assert corpus.skipped == [(str(root / "loop a.wav"),
                               "is a link that leads nowhere (its target is missing, or the links "
                               "loop); check the path and that the drive is mounted")]


def test_the_app_trains_from_a_manifest_and_refuses_what_is_not_audio_data(audio, tmp_path):
    from helpers import one_line_error, run_cli, tiny_sets

    listing = tmp_path / "audio" / "list.txt"
    listing.write_bytes(b"\n".join(os.fsencode(p) for p in audio) + b"\n")
    run = tmp_path / "run"
    done = run_cli("app", "--data", str(listing), "--run", str(run), "--autostart",
                   "--quit-after", "4", *tiny_sets(), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    config = (run / "config.toml").read_text()
    assert f'path = "{listing}"' in config
    assert (run / "checkpoints" / "latest.json").is_file()

    picture = tmp_path / "cover.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    line = one_line_error(run_cli("app", "--data", str(picture), "--run", str(tmp_path / "r2"),
                                  *tiny_sets()))
    assert f"--data {picture}: not audio data" in line and "a manifest" in line
    assert not (tmp_path / "r2").exists()


@pytest.mark.gui
def test_the_new_run_dialog_takes_a_manifest_or_a_prepared_dataset(qtbot, audio, tmp_path):
    from vqstudio.app.dialogs import NewRunDialog
    from vqstudio.audio.prepared import prepare

    listing = tmp_path / "audio" / "list.txt"
    listing.write_bytes(b"\n".join(os.fsencode(p) for p in audio) + b"\n")
    shards = tmp_path / "prepared"
    prepare(listing, shards, RATE)
    picture = tmp_path / "cover.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    dialog = NewRunDialog(tmp_path / "runs")
    qtbot.addWidget(dialog)
    for source in (listing, shards):
        dialog.data.setText(str(source))
        qtbot.waitUntil(lambda: dialog.ok.isEnabled())
        config, _ = dialog.chosen_run()
        assert config.data.path == str(source.resolve())
    dialog.data.setText(str(picture))
    qtbot.waitUntil(lambda: not dialog.ok.isEnabled())
    assert f"{picture}: not audio data" in dialog.problem.text()
    assert "a manifest" in dialog.problem.text()
