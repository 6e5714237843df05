"""Before/after verdicts of a verify: a finding that changed severity is better or worse with both
severities (not "still"), in the text, the JSON and the HTML; a control column gives the change's
own verdict (control -> after); a cancelled verify keeps and names the folders it trained."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from helpers import train_tiny_run
from vqstudio.diagnose.before_after import Verification, format_text, verdict, verdict_text
from vqstudio.diagnose.findings import Diagnosis, Finding, Remedy
from vqstudio.diagnose.report import render_verify_html
from vqstudio.diagnose.verify import Cancelled, Progress, verify
from vqstudio.experiments.checkpoint_ref import available
from vqstudio.train.runfolder import RunFolder


def finding(fid: str, severity: str) -> Finding:
    return Finding(fid, severity, f"{fid} title", "why", {"figure": 1.0})


def diagnosis(step: int, *found: Finding) -> Diagnosis:
    return Diagnosis(step, list(found), run="r", sample_rate=24000)


def test_verdicts_follow_severity():
    assert verdict(finding("a", "bad"), finding("a", "warn")) == "better"
    assert verdict(finding("a", "info"), finding("a", "warn")) == "worse"
    assert verdict(finding("a", "warn"), finding("a", "warn")) == "still"
    assert verdict(finding("a", "warn"), None) == "gone"
    assert verdict(None, finding("a", "info")) == "new"
    assert verdict_text(finding("a", "bad"), finding("a", "warn")) == "better (bad -> warn)"
    assert verdict_text(finding("a", "info"), finding("a", "warn")) == "worse (info -> warn)"


def verification(control: bool) -> Verification:
    before = diagnosis(400, finding("noise_floor", "bad"), finding("frame_rate_buzz", "warn"),
                       finding("istft", "info"), finding("dc_offset", "info"))
    after = diagnosis(800, finding("noise_floor", "warn"), finding("istft", "warn"),
                      finding("dc_offset", "info"), finding("clipping", "info"))
    ctrl = diagnosis(800, finding("noise_floor", "bad"), finding("frame_rate_buzz", "warn"),
                     finding("dc_offset", "info")) if control else None
    figs = {"before": {"mel_distance": 1.0, "si_sdr_db": -20.0, "pause_floor_dbfs": -50.0, "comb_db": 30.0},
            "after": {"mel_distance": 0.8, "si_sdr_db": -22.0, "pause_floor_dbfs": -60.0, "comb_db": 30.0}}
    if control:
        figs["control"] = {"mel_distance": 0.7, "si_sdr_db": -21.0, "pause_floor_dbfs": -52.0, "comb_db": 25.0}
    return Verification(Remedy("loss.mel_norm", "log", False, "r"), "r:400", "r-verify-mel_norm", "forked",
                        before, after, figs, 1.0, ctrl, "r-verify-control" if control else "")


def test_verification_reports_better_and_worse_everywhere():
    v = verification(control=False)
    verdicts = {row.id: row.verdicts["after"] for row in v.rows()}
    assert verdicts == {"noise_floor": "better (bad -> warn)", "frame_rate_buzz": "gone",
                        "istft": "worse (info -> warn)", "dc_offset": "still", "clipping": "new"}
    assert v.tally() == {"gone": 1, "better": 1, "still": 1, "worse": 1, "new": 1}
    text = format_text(v)
    assert "noise_floor  [better (bad -> warn)]" in text and "istft  [worse (info -> warn)]" in text
    assert "1 gone, 1 better, 1 still, 1 worse, 1 new" in text
    assert "--control" in text  # says how to separate the extra steps from the change
    data = json.loads(json.dumps(v.to_dict()))
    rows = {r["id"]: r for r in data["findings"]}
    assert rows["noise_floor"]["verdicts"]["after"] == "better (bad -> warn)"
    assert data["tally"]["worse"] == 1 and "control" not in data
    page = render_verify_html(v)
    assert "better (bad -&gt; warn)" in page and "worse (info -&gt; warn)" in page


def test_control_column_and_the_change_beyond_the_extra_steps():
    v = verification(control=True)
    rows = {row.id: row for row in v.rows()}
    # the control kept the buzz, the fork lost it: the change did that, not the extra steps
    assert rows["frame_rate_buzz"].verdicts["control"] == "still"
    assert rows["frame_rate_buzz"].change == "gone"
    assert rows["noise_floor"].change == "better (bad -> warn)"
    assert rows["clipping"].cells["control"] == "-" and rows["clipping"].change == "new"
    marks = {key: m for key, _label, _values, m in v.figure_rows()}
    assert marks["mel_distance"] == {"after": "better", "control": "better", "change": "worse"}
    assert marks["pause_floor_dbfs"]["change"] == "better"
    # a wobble is not a verdict: the control's comb 0.4 dB under the fork's, SI-SDR 0.3 dB from it
    v.figures["control"].update(comb_db=29.6, si_sdr_db=-22.3)
    marks = {key: m for key, _label, _values, m in v.figure_rows()}
    assert marks["comb_db"]["change"] == "" and marks["si_sdr_db"]["change"] == ""
    assert marks["comb_db"]["control"] == "" and marks["si_sdr_db"]["control"] == "worse"
    text = format_text(v)
    assert "control: r-verify-control (no change) at step 800" in text
    assert "the change beyond the extra steps (control -> after): gone" in text
    assert "    control: -\n" in text and "[]" not in text  # clipping: new in the fork, not in the control
    assert re.search(r"mel distance\s+1\s+0\.8\s+0\.7", text)
    data = v.to_dict()
    assert data["control"]["step"] == 800 and data["control_fork"] == "r-verify-control"
    assert set(data["figures"]) == {"before", "after", "control"}
    page = render_verify_html(v)
    assert "control, no change: r-verify-control (step 800)" in page


def test_cancel_while_the_control_trains_keeps_and_names_both_forks(tmp_path):
    run, corpus = train_tiny_run(tmp_path, steps=4, checkpoint_every=4)
    fork, control, progress, caught = tmp_path / "fork", tmp_path / "control", Progress(), {}

    def work():
        try:
            verify(str(run), "loss.weights.mrstft=2.0", 3, fork_dir=fork, control=True, control_dir=control,
                   data=str(corpus), max_seconds=1.0, progress=progress)
        except Cancelled as exc:
            caught["error"] = str(exc)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 300
    while not progress.phase.startswith("training the control") and thread.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    progress.cancel()
    thread.join(300)
    assert "error" in caught, "the verify finished before it could be cancelled"
    assert f"the control fork {control} kept at step" in caught["error"]
    assert f"the fork {fork} trained its 3 steps and is kept" in caught["error"]
    assert "7" in available(RunFolder(fork)) and available(RunFolder(control))
    assert not (run / "checkpoints" / "step-00000007.pt").exists()
    with pytest.raises(Cancelled, match="nothing was written"):
        cancelled = Progress()
        cancelled.cancel()
        verify(str(run), "loss.weights.mrstft=2.0", 3, fork_dir=tmp_path / "never", data=str(corpus),
               max_seconds=1.0, progress=cancelled)
    assert not (tmp_path / "never").exists()
