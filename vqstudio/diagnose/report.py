"""A :class:`~vqstudio.diagnose.findings.Diagnosis` for people: :func:`format_text` (the terminal's
ranked list) and :func:`write_html` (one self-contained page: spectrograms as inline PNG data URIs,
short WAV snippets as base64 ``<audio>`` elements, no network, nothing beside it to send along)."""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from vqstudio.atomic import atomic_write_text
from vqstudio.diagnose.findings import Diagnosis, Finding
from vqstudio.diagnose.images import data_uri, spectrogram_png

MARK = {"bad": "BAD ", "warn": "WARN", "info": "info"}
SNIPPET_MIN_S = 1.0
SNIPPET_MAX_S = 4.0


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_figure(v) for v in value) + "]"
    return str(value)


def format_text(diagnosis: Diagnosis) -> str:
    """The ranked findings, each with its remedies, then what was not measured and why."""
    head = f"diagnosis of {diagnosis.run or 'a model'}"
    head += f" at step {diagnosis.step}" if diagnosis.step is not None else ""
    lines = [head + f" on {len(diagnosis.clips)} clip(s): {', '.join(diagnosis.clips)}"]
    if not diagnosis.findings:
        lines.append("no findings: every check that ran stayed under its thresholds")
    for i, f in enumerate(diagnosis.findings, 1):
        lines.append(f"{i:>2}. [{MARK[f.severity]}] {f.title}  ({f.id})")
        lines.append(f"      {f.explanation}")
        if f.listen:
            lines.append(f"      listen: {f.listen.clip} {f.listen.start:.2f}-{f.listen.stop:.2f} s "
                         f"({f.listen.source})")
        for r in f.remedies:
            how = "live" if r.live else "needs a fork"
            lines.append(f"      fix: --set {r.text}  [{how}] {r.reason}")
    for name, why in diagnosis.skipped.items():
        lines.append(f"  not measured: {name}: {why}")
    return "\n".join(lines)


def _wav(wave: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _region(f: Finding, diagnosis: Diagnosis) -> tuple[str, int, int] | None:
    if f.listen is None or f.listen.clip not in diagnosis.audio:
        return None
    sr, length = diagnosis.sample_rate, len(diagnosis.audio[f.listen.clip][0])
    start = int(f.listen.start * sr)
    stop = int(min(max(f.listen.stop, f.listen.start + SNIPPET_MIN_S), f.listen.start + SNIPPET_MAX_S) * sr)
    return f.listen.clip, max(0, min(start, length - sr // 2)), min(stop, length)


def _media(f: Finding, diagnosis: Diagnosis) -> str:
    region = _region(f, diagnosis)
    if region is None:
        return ""
    clip, start, stop = region
    original, recon = (np.asarray(w[start:stop], np.float64) for w in diagnosis.audio[clip])
    sr = diagnosis.sample_rate
    cells = []
    for label, wave in (("original", original), ("reconstruction", recon), ("residual", recon - original)):
        picture = data_uri("image/png", spectrogram_png(wave, sr))
        sound = data_uri("audio/wav", _wav(wave, sr))
        cells.append(f'<figure><figcaption>{label}</figcaption><img src="{picture}" alt="{label} spectrogram">'
                     f'<audio controls src="{sound}"></audio></figure>')
    return (f'<p class="where">{html.escape(clip)}, {start / sr:.2f}-{stop / sr:.2f} s (0-8 kHz)</p>'
            f'<div class="media">{"".join(cells)}</div>')


def _finding_html(f: Finding, diagnosis: Diagnosis) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_figure(v))}</td></tr>"
                   for k, v in f.evidence.items())
    where = html.escape(_figure(f.where)) if f.where else ""
    fixes = "".join(
        f"<li><code>--set {html.escape(r.text)}</code> <span class=\"{'live' if r.live else 'fork'}\">"
        f"{'live' if r.live else 'needs a fork'}</span> {html.escape(r.reason)}</li>" for r in f.remedies)
    return (f'<section class="{f.severity}"><h2><span class="sev">{f.severity}</span> {html.escape(f.title)}'
            f' <small>{html.escape(f.id)}</small></h2><p>{html.escape(f.explanation)}</p>'
            + (f"<p class=\"where\">where: {where}</p>" if where else "")
            + (f"<ul>{fixes}</ul>" if fixes else "")
            + f"<details><summary>evidence</summary><table>{rows}</table></details>"
            + _media(f, diagnosis) + "</section>")


STYLE = """body{font:14px/1.4 sans-serif;margin:2em;max-width:70em;color:#222}
section{border-left:6px solid #999;padding:.2em 1em;margin:1em 0;background:#fafafa}
section.bad{border-color:#c0392b}section.warn{border-color:#e67e22}section.info{border-color:#2980b9}
.sev{text-transform:uppercase;font-size:.8em}h2 small{color:#888;font-weight:normal}
.live{color:#27ae60}.fork{color:#8e44ad}.where{color:#555}table{border-collapse:collapse}
th,td{text-align:left;padding:2px 8px;border-bottom:1px solid #ddd;vertical-align:top}
.media{display:flex;gap:1em;flex-wrap:wrap}figure{margin:0}img{display:block;height:160px;width:320px}"""


def render_html(diagnosis: Diagnosis) -> str:
    title = f"VQ Studio diagnosis: {diagnosis.run or 'model'}" + (
        f" at step {diagnosis.step}" if diagnosis.step is not None else "")
    body = "".join(_finding_html(f, diagnosis) for f in diagnosis.findings) or "<p>No findings.</p>"
    skipped = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in diagnosis.skipped.items())
    data = json.dumps(diagnosis.to_dict()).replace("</", "<\\/")  # cannot close the script
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>Clips: {html.escape(', '.join(diagnosis.clips))}</p>{body}"
            + (f"<h3>Not measured</h3><ul>{skipped}</ul>" if skipped else "")
            + f'<script type="application/json" id="diagnosis">{data}</script></body></html>\n')


def write_html(diagnosis: Diagnosis, path: str | Path) -> None:
    atomic_write_text(Path(path), render_html(diagnosis))


def render_verify_html(v) -> str:
    """A :class:`~vqstudio.diagnose.before_after.Verification` as one page: the figures, then
    each finding before and after (and in the control fork) with its verdict, then the full
    diagnoses with their audio in columns."""
    title = f"VQ Studio: verify --set {v.remedy.text}"
    names = [name for name, _ in v.columns]
    who = {"before": f"before: {v.parent} (step {v.before.step})",
           "after": f"after: {v.fork} (step {v.after.step})",
           "control": f"control, no change: {v.control_fork} (step {v.control.step if v.control else ''})"}
    change = v.control is not None
    head = ("<tr><th></th>" + "".join(f"<th>{html.escape(who[n])}</th>" for n in names)
            + ("<th>the change beyond the extra steps (control -> after)</th>" if change else "") + "</tr>")

    def mark(text: str) -> str:
        return f' <span class="verdict">{html.escape(text)}</span>' if text else ""

    figures = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{_figure(values[n])}{mark(marks.get(n, ''))}</td>" for n in names)
        + (f"<td>{html.escape(marks.get('change', ''))}</td>" if change else "") + "</tr>"
        for _key, label, values, marks in v.figure_rows())
    rows = "".join(
        f"<tr><th>{html.escape(row.id)}</th>"
        + "".join(f"<td>{html.escape(row.cells[n])}{mark(row.verdicts.get(n, ''))}</td>" for n in names)
        + (f"<td>{html.escape(row.change)}</td>" if change else "") + "</tr>"
        for row in v.rows())
    tally = ", ".join(f"{n} {word}" for word, n in v.tally().items())
    columns = "".join(
        f'<div style="flex:1;min-width:24em"><h2>{label.capitalize()}</h2>'
        + ("".join(_finding_html(f, d) for f in d.findings) or "<p>No findings.</p>") + "</div>"
        for label, d in v.columns)
    data = json.dumps(v.to_dict()).replace("</", "<\\/")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}.verdict{{color:#555;font-style:italic}}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(v.fork_summary)}</p><table>{head}{figures}</table>"
            f"<h2>Findings</h2><p>after against before: {html.escape(tally)}</p><table>{head}{rows}</table>"
            f'<div style="display:flex;gap:1em;flex-wrap:wrap">{columns}</div>'
            f'<script type="application/json" id="verification">{data}</script></body></html>\n')


def write_verify_html(v, path: str | Path) -> None:
    atomic_write_text(Path(path), render_verify_html(v))
