"""The corpus index on real folders: a second scan reuses it, changes are noticed and only they are
checked, the skip report stays exactly what a full scan says, a damaged or foreign index is
ignored; and names that are not valid UTF-8, spaces and symlink loops all work, through to
`vqstudio train`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from helpers import run_cli, tiny_sets
from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.audio.corpus_index import CorpusIndex

RATE = 16000


def write(path, seconds=0.3, level=0.1, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(seconds * rate), level, np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("VQSTUDIO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    for k in range(6):
        write(root / f"s{k % 2}" / f"f{k}.wav", level=0.1 * (k + 1))
    (root / "junk.wav").write_text("not audio")
    return root


def full_scan_report(folder, tmp_path, monkeypatch):
    """What a scan without any index says."""
    monkeypatch.setenv("VQSTUDIO_CACHE", str(tmp_path / f"fresh{len(os.listdir(tmp_path))}"))
    report = scan_corpus(folder, RATE).report(0.5)
    monkeypatch.setenv("VQSTUDIO_CACHE", str(tmp_path / "cache"))
    return _without_index_line(report)


def _without_index_line(report):
    return "\n".join(l for l in report.splitlines() if not l.startswith("Corpus index:"))


def index_of(folder):
    return CorpusIndex.for_source(folder)


def test_second_scan_takes_everything_from_the_index(folder, tmp_path, monkeypatch):
    first = scan_corpus(folder, RATE)
    assert "0 files unchanged since the last scan, 7 checked" in first.report()
    second = scan_corpus(folder, RATE)
    assert "6 files unchanged since the last scan, 1 checked" in second.report()  # junk again
    assert second.files == first.files
    assert second.skipped == first.skipped
    assert _without_index_line(second.report(0.5)) == full_scan_report(folder, tmp_path, monkeypatch)


def test_changed_added_removed_and_broken_files_are_noticed(folder, tmp_path, monkeypatch):
    scan_corpus(folder, RATE)
    write(folder / "s0" / "f0.wav", seconds=0.7)  # changed: longer
    write(folder / "new" / "added.wav")
    (folder / "s1" / "f1.wav").unlink()
    broken = folder / "s0" / "f2.wav"
    broken.write_bytes(broken.read_bytes()[:200])  # cut off
    corpus = scan_corpus(folder, RATE)
    names = {os.path.relpath(f.path, folder) for f in corpus.files}
    assert names == {"s0/f0.wav", "new/added.wav", "s1/f3.wav", "s0/f4.wav", "s1/f5.wav"}
    assert next(f for f in corpus.files if f.path.endswith("f0.wav")).frames == int(0.7 * RATE)
    # checked again: the changed, the added, the broken one and the junk; the rest reused
    assert "3 files unchanged since the last scan, 4 checked" in corpus.report()
    assert {os.path.basename(p) for p, _ in corpus.skipped} == {"junk.wav", "f2.wav"}
    assert _without_index_line(corpus.report(0.5)) == full_scan_report(folder, tmp_path, monkeypatch)
    assert set(index_of(folder).entries) == {f.path for f in corpus.files}  # removed file gone


def test_a_file_that_turns_unreadable_is_checked_again(folder):
    scan_corpus(folder, RATE)
    locked = folder / "s1" / "f3.wav"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        corpus = scan_corpus(folder, RATE)
        assert any(p.endswith("f3.wav") and "permission" in r for p, r in corpus.skipped)
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize("content", [
    b"{not json", b'{"format": "someone-else", "files": {}}',
    b'{"format": "vqstudio-corpus-index", "version": 999}',
    b'{"format": "vqstudio-corpus-index", "version": 1, "source": "/elsewhere", "files": {}}',
])
def test_a_corrupt_or_foreign_index_is_ignored_with_a_note(folder, content):
    first = scan_corpus(folder, RATE)
    index_of(folder).location.write_bytes(content)
    again = scan_corpus(folder, RATE)
    assert "ignored the corpus index" in again.report()
    assert again.files == first.files and again.skipped == first.skipped
    assert json.loads(index_of(folder).location.read_bytes())["format"] == "vqstudio-corpus-index"


def test_an_index_whose_entries_lie_is_not_trusted_past_size_and_time(folder):
    scan_corpus(folder, RATE)
    index = index_of(folder)
    data = json.loads(index.location.read_bytes())
    columns = data["files"]
    row = next(i for i, p in enumerate(columns["path"]) if p.endswith("f0.wav"))
    target = columns["path"][row]
    columns["mtime_ns"][row] += 1  # a different modification time: must be checked again
    columns["frames"][row] = 123  # and its (wrong) frame count must not be used
    index.location.write_text(json.dumps(data))
    corpus = scan_corpus(folder, RATE)
    assert next(f for f in corpus.files if f.path == target).frames == int(0.3 * RATE)


def test_odd_names_spaces_and_link_loops(tmp_path, monkeypatch):
    monkeypatch.setenv("VQSTUDIO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "odd"
    write(root / "with space" / "a b.wav", level=0.2)
    raw = os.fsencode(root) + b"/caf\xe9 latin-1.wav"  # not valid UTF-8
    os.rename(write(tmp_path / "tmp.wav", level=0.4), raw)
    os.symlink(root, root / "with space" / "loop")  # a cycle
    os.symlink(root / "with space" / "a b.wav", root / "link.wav")
    corpus = scan_corpus(root, RATE)
    assert len(corpus.files) == 3 and not corpus.skipped
    corpus.report().encode("utf-8")  # printable: the odd byte is shown escaped
    assert "caf\\xe9 latin-1.wav" in scan_corpus(os.fsdecode(raw), RATE).report(5.0)
    batch = SegmentSampler(corpus, RATE, 800, seed=0).batch(0, 8)
    values = np.unique(batch.numpy().round(3))
    assert np.isin(values, np.float32([0.2, 0.4])).all()
    assert scan_corpus(root, RATE).files == corpus.files  # and from the index, the same


def test_train_on_a_folder_with_names_that_are_not_utf8(tmp_path):
    """Before the fix, `vqstudio train` died with UnicodeEncodeError before the first step."""
    root = tmp_path / "data"
    for k, name in enumerate([b"caf\xe9.wav", b"\xff\xfe odd name.wav", b"plain.wav"]):
        rng = np.random.default_rng(k)
        tmp = write(tmp_path / "t.wav", seconds=1.0, rate=24000)
        sf.write(tmp, (rng.standard_normal(24000) * 0.1).astype(np.float32), 24000)
        root.mkdir(exist_ok=True)
        os.rename(tmp, os.fsencode(root) + b"/" + name)
    (root / "x.wav").write_text("junk")
    os.rename(root / "x.wav", os.fsencode(root) + b"/broken \xe9.wav")  # reported by name
    run = tmp_path / "run"
    result = run_cli("train", "--data", str(root), "--run", str(run), "--steps", "2", *tiny_sets())
    assert result.returncode == 0, result.stderr
    assert "broken \\xe9.wav" in result.stdout
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "skipped_file" for e in events)


def test_a_data_folder_whose_own_name_is_not_utf8_is_refused_in_one_line(tmp_path):
    """config.toml (TOML is UTF-8) cannot record such a path: say so and how to get round it."""
    folder = os.fsencode(tmp_path) + b"/d\xe9"
    os.mkdir(folder)
    os.rename(write(tmp_path / "a.wav", seconds=1.0, rate=24000), folder + b"/a.wav")
    run = tmp_path / "run"
    result = run_cli("train", "--data", os.fsdecode(folder), "--run", str(run), "--steps", "1")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "d\\xe9 is not valid UTF-8" in result.stderr and "link" in result.stderr
    assert not run.exists()
