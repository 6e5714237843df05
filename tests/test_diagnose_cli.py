"""``vqstudio diagnose`` in a real subprocess on a real (tiny) trained run: the terminal list, the
JSON, the self-contained HTML report, ``--verify`` forking and diagnosing both, and bad input as
one line with exit 2 and nothing written."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
import soundfile as sf

from helpers import one_line_error, run_cli, train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("diagnose"), steps=8, checkpoint_every=4)


def test_diagnose_lists_writes_json_and_one_self_contained_report(trained, tmp_path):
    run, corpus = trained
    out, report = tmp_path / "d.json", tmp_path / "d.html"
    result = run_cli("diagnose", "--run", str(run), "--data", str(corpus), "--json", str(out),
                     "--report", str(report), "--max-seconds", "1")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"diagnosis of {run}" in text and "at step 8" in text
    assert re.search(r"^ 1\. \[(BAD |WARN|info)\] ", text, re.M)
    assert "fix: --set " in text
    assert "not measured: background_mos" in text

    data = json.loads(out.read_text())
    assert data["step"] == 8 and data["findings"]
    for f in data["findings"]:
        assert {"id", "severity", "title", "evidence", "remedies"} <= set(f)
        assert f["severity"] in ("info", "warn", "bad")
        for r in f["remedies"]:
            assert {"setting", "value", "live", "reason", "set"} <= set(r)
    ranks = [("info", "warn", "bad").index(f["severity"]) for f in data["findings"]]
    assert ranks == sorted(ranks, reverse=True)

    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page)  # nothing fetched from the network
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    wavs = re.findall(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', page)
    assert pngs and wavs
    assert base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
    audio, rate = sf.read(io.BytesIO(base64.b64decode(wavs[0])))
    assert rate == 24000 and len(audio) > 0
    assert [f["id"] for f in data["findings"]][0] in page


def test_diagnose_checkpoint_choice(trained, tmp_path):
    run, corpus = trained
    out = tmp_path / "d4.json"
    result = run_cli("diagnose", "--run", str(run), "--checkpoint", "4", "--data", str(corpus),
                     "--json", str(out), "--max-seconds", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["step"] == 4


def test_diagnose_picks_the_clips_by_split_and_name(trained):
    """--data alone is the folder's validation split (one of the two clips); --split all and
    --match pick as `vqstudio compare` does; a glob that matches nothing names both options."""
    run, corpus = trained
    default, every, matched, nothing = (
        run_cli("diagnose", "--run", str(run), "--data", str(corpus), "--max-seconds", "1", *extra)
        for extra in ([], ["--split", "all"], ["--split", "all", "--match", "clip1*"],
                      ["--match", "speech*"]))
    for result in (default, every, matched):
        assert result.returncode == 0, result.stderr
    assert "on 1 clip(s)" in default.stdout.splitlines()[0]
    assert "on 2 clip(s): clip0.wav, clip1.flac" in every.stdout.splitlines()[0]
    assert "on 1 clip(s): clip1.flac" in matched.stdout.splitlines()[0]
    error = one_line_error(nothing)
    assert "named like 'speech*'" in error and "--match" in error


def test_verify_forks_trains_and_shows_before_after_and_control(trained, tmp_path):
    run, corpus = trained
    fork, control, out = tmp_path / "fork", tmp_path / "control", tmp_path / "v.json"
    report = tmp_path / "v.html"
    result = run_cli("diagnose", "--run", str(run), "--data", str(corpus), "--verify",
                     "loss.weights.mrstft=2.0", "--verify", "loss.weights.waveform_mse=0.5", "--steps", "2", "--fork", str(fork), "--control",
                     "--control-fork", str(control), "--json", str(out), "--report", str(report),
                     "--max-seconds", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "findings (before -> after, control):" in text and "mel distance" in text
    assert f"control: {control} (no change) at step 10" in text
    assert "the change beyond the extra steps (control -> after):" in text
    v = json.loads(out.read_text())
    assert v["before"]["step"] == 8 and v["after"]["step"] == 10 and v["control"]["step"] == 10
    assert v["remedy"]["set"] == "loss.weights.mrstft=2.0 --set loss.weights.waveform_mse=0.5"  # together
    assert set(v["figures"]) == {"before", "after", "control"}
    assert {"id", "cells", "verdicts", "change"} <= set(v["findings"][0])
    assert sum(v["tally"].values()) == len({f["id"] for f in v["before"]["findings"] + v["after"]["findings"]})
    # the minutes of training are not silent: each phase and the fork's last step, as they happen
    lines = result.stdout.splitlines()
    for line in ("diagnosing the parent", "training the fork (fork): step 2 of 2",
                 "diagnosing the fork", "training the control fork (control): step 2 of 2",
                 "diagnosing the control fork"):
        assert line in lines, (line, lines)
    fork_config = (fork / "config.toml").read_text()
    assert "[forked_from]" in fork_config
    assert re.search(r"^mrstft = 2\.0$", fork_config, re.M) and re.search(r"^waveform_mse = 0\.5$", fork_config, re.M)
    control_config = (control / "config.toml").read_text()
    assert "[forked_from]" in control_config and "mrstft" not in control_config.split("[forked_from]")[1]
    assert (control / "checkpoints" / "step-00000010.pt").exists()
    assert not (run / "checkpoints" / "step-00000010.pt").exists()  # the parent is untouched
    assert "control, no change" in report.read_text()


@pytest.mark.parametrize("args, words", [
    (["--run", "{tmp}/nothing"], "nothing"),
    (["--run", "{run}", "--checkpoint", "999"], "999"),
    (["--run", "{run}", "--json", "{tmp}/no/such/d.json"], "does not exist"),
    (["--run", "{run}", "--clips", "0"], "--clips"),
    (["--run", "{run}", "--data", "{corpus}", "--verify", "no_such_finding", "--steps", "1"], "no_such_finding"),
    (["--run", "{run}", "--control"], "--control needs --verify"),
    (["--run", "{run}", "--data", "{corpus}", "--verify", "noise_floor", "--verify", "loss.weights.mrstft=2",
      "--steps", "1"], "combined only as setting=value"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(trained, tmp_path, args, words):
    run, corpus = trained
    report = tmp_path / "r.html"
    filled = [a.format(tmp=tmp_path, run=run, corpus=corpus) for a in args]
    result = run_cli("diagnose", *filled, "--report", str(report), "--max-seconds", "1")
    assert words in one_line_error(result)
    assert not report.exists()
