"""Blind tests: ABX scores and their exact binomial p-values (against a hand-computed sum), the
blind preference tally, and listening.jsonl: one valid line per session in each run folder,
appended whole under a lock by concurrent writers, a cut line skipped, and the summary the
comparison table reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from vqstudio.errors import UserError
from vqstudio.experiments.listening import (
    AbxTest,
    Contender,
    PreferenceTest,
    abx_p_value,
    append_session,
    listening_path,
    preference_p_value,
    read_listening,
    run_summary,
)


def _by_hand(correct: int, trials: int) -> float:
    """P(X >= correct) for X ~ Binomial(trials, 1/2), summed term by term."""
    return sum(math.comb(trials, k) for k in range(correct, trials + 1)) / 2 ** trials


@pytest.mark.parametrize("correct, trials", [(0, 5), (5, 10), (8, 10), (10, 10), (12, 16), (1, 1)])
def test_abx_p_value_is_the_exact_one_sided_binomial_tail(correct, trials):
    assert abx_p_value(correct, trials) == pytest.approx(_by_hand(correct, trials), rel=1e-12)
    assert abx_p_value(8, 10) == pytest.approx(56 / 1024)  # 45 + 10 + 1 ways of 8+ right


def test_preference_p_value_is_two_sided():
    assert preference_p_value(5, 10) == pytest.approx(1.0)
    assert preference_p_value(9, 10) == pytest.approx(2 * 11 / 1024)
    assert preference_p_value(1, 10) == pytest.approx(preference_p_value(9, 10))


def _pair(tmp_path):
    a = Contender(str(tmp_path / "base"), "step-00000400.pt", 400)
    b = Contender(str(tmp_path / "fixed"), "best.pt", 380)
    (tmp_path / "base").mkdir(exist_ok=True)
    (tmp_path / "fixed").mkdir(exist_ok=True)
    return a, b


def test_an_abx_session_scores_the_answers_and_is_recorded_in_both_runs(tmp_path):
    a, b = _pair(tmp_path)
    test = AbxTest(a, b, trials=10, seed=3, clip="speech.flac", region=(1.0, 2.5), levels=4)
    assert set(test.hidden) == {"A", "B"} and len(test.hidden) == 10, "X is drawn at random"
    assert AbxTest(a, b, trials=10, seed=3).hidden == test.hidden, "the seed fixes the draw"
    plan = [x if i < 8 else ("B" if x == "A" else "A") for i, x in enumerate(test.hidden)]
    for i, reply in enumerate(plan):
        assert test.source("A") == "A" and test.source("B") == "B"
        assert test.source("X") == test.hidden[i], "the dialog plays X as the hidden side"
        assert test.answer(reply) == (i < 8)
    assert test.done and test.correct == 8 and test.p_value == pytest.approx(56 / 1024)
    with pytest.raises(UserError, match="finished"):
        test.answer("A")

    written = append_session(test.record())
    assert written == [listening_path(a.run), listening_path(b.run)]
    for path in written:
        lines = path.read_text().splitlines()
        assert len(lines) == 1
        record = json.loads(lines[0])
        assert record["kind"] == "abx" and record["clip"] == "speech.flac"
        assert record["region"] == [1.0, 2.5] and record["levels"] == 4
        assert record["a"]["checkpoint"] == "step-00000400.pt" and record["b"]["step"] == 380
        assert [t["x"] for t in record["trials"]] == test.hidden
        assert [t["answer"] for t in record["trials"]] == plan
        assert record["correct"] == 8 and record["answered"] == 10
        assert record["p_value"] == pytest.approx(_by_hand(8, 10))

    summary = run_summary(a.run)
    base, fixed = summary[a.key], summary[b.key]
    assert base.abx == {b.label: (8, 10)} and fixed.abx == {a.label: (8, 10)}
    assert "ABX 8/10 p=0.055 vs fixed:380" == base.cell()


def test_a_blind_preference_hides_which_is_which_and_tallies_the_choice(tmp_path):
    a, b = _pair(tmp_path)
    test = PreferenceTest(a, b, trials=12, seed=1)
    orders = []
    for _ in range(12):
        first = test.source("1")
        orders.append(first)
        assert {first, test.source("2")} == {"A", "B"}
        slot = "1" if first == "B" else "2"  # always pick the fixed run, wherever it is
        assert test.answer(slot) == "B"
    assert set(orders) == {"A", "B"}, "the order is shuffled"
    assert test.prefer_a == 0 and test.p_value == pytest.approx(2 / 2 ** 12)
    append_session(test.record())
    summary = run_summary(b.run)
    assert summary[b.key].preferred == 12 and summary[b.key].preference_trials == 12
    assert summary[a.key].preferred == 0
    assert summary[b.key].cell() == "pref 12/12"


def test_bad_tests_and_answers_are_refused_by_name(tmp_path):
    a, b = _pair(tmp_path)
    with pytest.raises(UserError, match="both sides"):
        AbxTest(a, a)
    with pytest.raises(UserError, match="at least one trial"):
        PreferenceTest(a, b, trials=0)
    with pytest.raises(UserError, match="not one of A, B"):
        AbxTest(a, b).answer("X")
    missing = {**AbxTest(a, b, trials=1).record(), "a": {**a.as_dict(), "run": str(tmp_path / "gone")}}
    with pytest.raises(UserError, match="could not be saved"):
        append_session(missing)
    assert len(read_listening(b.run)) == 1, "the folder that exists still gets the line"


_WRITER = r"""
import sys
from vqstudio.experiments.listening import AbxTest, Contender, append_session
run, who = sys.argv[1], sys.argv[2]
a, b = Contender(run, "step-00000001.pt", 1), Contender(run, "step-00000002.pt", 2)
for i in range(40):
    test = AbxTest(a, b, trials=30, seed=i, clip=who * 200)  # long lines: a torn write would show
    for x in test.hidden:
        test.answer(x)
    append_session(test.record())
"""


def test_concurrent_writers_never_interleave_and_a_cut_line_is_skipped(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(run), who]) for who in "xyz"]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    lines = listening_path(run).read_text().splitlines()
    assert len(lines) == 120
    records = [json.loads(line) for line in lines]  # every line whole
    assert {r["clip"][0] for r in records} == set("xyz") and len({r["id"] for r in records}) == 120

    with open(listening_path(run), "a") as handle:  # a crash in the middle of a line
        handle.write(lines[0][: len(lines[0]) // 2])
    test = AbxTest(Contender(str(run), "a.pt"), Contender(str(run), "b.pt"), trials=1)
    test.answer("A")
    append_session(test.record())
    records = read_listening(run)
    assert len(records) == 121 and records[-1]["a"]["checkpoint"] == "a.pt"
    assert read_listening(tmp_path / "never-tested") == []
