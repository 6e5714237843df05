"""`vqstudio compare`: several checkpoints measured on the same clips, one table, one JSON."""

from __future__ import annotations

import json

import pytest

from helpers import one_line_error, run_cli, run_clis, train_tiny_run
from vqstudio.experiments.compare import format_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run with checkpoints at steps 4 and 8, and the clips it trained on."""
    return train_tiny_run(tmp_path_factory.mktemp("runs"))


def test_compare_measures_each_checkpoint_as_eval_does(trained, tmp_path):
    run, corpus = trained
    out, single = tmp_path / "compare.json", tmp_path / "eval.json"
    result = run_cli("compare", f"{run}:4", f"{run}:latest", "--data", str(corpus), "--json", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["run:step", "SI-SDR", "dB"]
    assert lines[1].startswith("r:4") and lines[2].startswith("r:8") and "*" in result.stdout
    entries = json.loads(out.read_text())
    assert [(e["run"], e["step"], e["checkpoint"]) for e in entries] == [
        (str(run), 4, "step-00000004.pt"), (str(run), 8, "step-00000008.pt")]

    evaluated = run_cli("eval", "--run", str(run), "--checkpoint", str(run / "checkpoints" / "step-00000004.pt"),
                        "--data", str(corpus), "--json", str(single))
    assert evaluated.returncode == 0, evaluated.stderr
    figures = json.loads(single.read_text())
    for key, value in figures.items():  # the same function: the same numbers
        assert entries[0][key] == value, key


def test_without_data_it_measures_the_first_runs_own_corpus(trained, tmp_path):
    run, corpus = trained
    named, own = tmp_path / "named.json", tmp_path / "own.json"
    results = run_clis(["compare", f"{run}:latest", "--data", str(corpus), "--json", str(named)],
                       ["compare", f"{run}:latest", "--json", str(own)])
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    with_data, without = json.loads(named.read_text()), json.loads(own.read_text())
    assert without[0]["files"] == with_data[0]["files"] == 2
    assert without == with_data


def test_a_bad_reference_is_one_line_before_any_model_runs(trained, tmp_path):
    run, corpus = trained
    out = tmp_path / "compare.json"
    error = one_line_error(run_cli("compare", f"{run}:4", f"{run}:5", "--data", str(corpus), "--json", str(out)))
    assert "has no checkpoint '5'" in error and "4, 8" in error
    assert not out.exists()


def _entry(run: str, step: int, si_sdr: float, mel: float, entropy: list[float], **extra) -> dict:
    return {"run": f"/runs/{run}", "checkpoint": f"step-{step:08d}.pt", "step": step, "si_sdr_db": si_sdr,
            "mel_distance": mel, "codebook_entropy": entropy, "files": 3, "levels": 2, **extra}


def test_the_table_marks_the_best_of_each_column_the_right_way_round():
    entries = [_entry("base", 100, 3.0, 0.9, [0.5, 0.5], band_error_db={"<1k": -3.0}),
               _entry("fixed", 100, 5.0, 1.2, [0.5, 0.5], band_error_db={"<1k": -6.0}, pesq=2.5)]
    rows = format_table(entries).splitlines()
    heading, base, fixed = rows[0].split(), rows[1].split(), rows[2].split()
    assert heading[:5] == ["run:step", "SI-SDR", "dB", "mel", "PESQ"]
    assert base[:4] == ["base:100", "3.000", "0.900*", "-"]  # lower mel distance is better
    assert fixed[:4] == ["fixed:100", "5.000*", "1.200", "2.500"]  # one PESQ figure marks nothing
    assert base[4] == fixed[4] == "0.500"  # equal entropy: no mark
    assert base[5] == "-3.000" and fixed[5] == "-6.000*"


def test_the_background_figures_are_the_distortion_measures_of_the_chosen_clips(trained, tmp_path):
    """--split/--match pick the clips; the pause floor, the comb and DNSMOS (--mos) are
    audio/distortion.py's figures of each reconstruction, the same code the benchmark and the
    diagnosis's verify use."""
    from vqstudio.audio import distortion
    from vqstudio.audio.corpus import scan_corpus
    from vqstudio.audio.io import read_audio
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.compare import compare
    from vqstudio.experiments.corpus_eval import load_model
    from vqstudio.model.inference import reconstruct

    run, corpus = trained
    ref = resolve_ref(f"{run}:latest")
    config = ref.config
    validation = scan_corpus(corpus, config.model.sample_rate).split(config.data.val_fraction,
                                                                     config.data.seed)[1].files
    assert len(validation) == 1
    (entry,) = compare([f"{run}:latest"], corpus, split="validation", mos=True)
    assert entry["files"] == 1
    model, _ = load_model(ref)
    wave = read_audio(validation[0].path, config.model.sample_rate, duration=30.0)
    recon = reconstruct(model, wave)
    direct = distortion.distortion_figures(wave, recon, config.model.sample_rate, config.model.hop)
    for key in ("pause_floor_dbfs", "comb_max_db", "comb_loudest_dbfs"):
        assert entry[key] == direct[key], key
    assert entry["comb_audible_worst_db"] == distortion.worst_audible_comb([direct])
    assert entry["dnsmos_background"] == distortion.dnsmos(recon, config.model.sample_rate).background
    assert 1.0 <= entry["dnsmos_background"] <= 5.0
    assert all(0 < u <= 1 for u in entry["codebook_usage"])

    out = tmp_path / "matched.json"
    matched, nothing = run_clis(
        ["compare", f"{run}:latest", "--data", str(corpus), "--match", "clip1*", "--json", str(out)],
        ["compare", f"{run}:latest", "--data", str(corpus), "--match", "speech*", "--json", str(tmp_path / "x.json")])
    assert matched.returncode == 0, matched.stderr
    heading = matched.stdout.splitlines()[0]
    assert "pauses dBFS" in heading and "audible comb dB" in heading and "comb dBFS" in heading
    assert "audible comb: the worst clip's" in matched.stdout
    assert "DNSMOS" not in heading  # only when asked for
    assert json.loads(out.read_text())[0]["files"] == 1
    error = one_line_error(nothing)
    assert "named like 'speech*'" in error and "--match" in error
    assert not (tmp_path / "x.json").exists()
