"""Change markers on the loss curves: a labelled vertical line wherever a live setting changed
(a weight, the learning rate, the balancer, the mel norm ...: train/settings.py's table), dead
codes were replaced by hand, or training was restored after a non-finite step. What the label
says, and the line itself."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt

from vqstudio.app import theme
from vqstudio.train.settings import SETTINGS

MARKER_POSITIONS = (0.95, 0.8, 0.65, 0.5, 0.35)  # label heights, cycled so neighbours don't overlap


def format_number(value: Any) -> str:
    """Short form of a weight or rate: 1, 2.5, 0.0003, 3e-05."""
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return str(value)


def marker_label(event: dict[str, Any]) -> str | None:
    """The text a change event's marker carries, e.g. ``"mel_l1/1024 1→2.5"``; None for events
    that get no marker (checkpoints, pauses, automatic dead-code replacements ...)."""
    kind = event.get("kind")
    if kind == "weights":
        changes = [f"{term} {format_number(old)}→{format_number(new)}"
                   for term, (old, new) in event.get("changes", {}).items()]
        if len(changes) > 2:  # e.g. "Reset to preset": the tooltip has them all
            return f"{changes[0]}; {changes[1]} +{len(changes) - 2} more"
        return "; ".join(changes) or None
    if kind in SETTINGS and kind != "weights":  # lr, balancer, mel norm, EMA decay ... (train/settings.py)
        label = SETTINGS[kind].label
        return f"{label} {format_number(event.get('old'))}→{format_number(event.get('new'))}"
    if kind == "replace_dead_codes" and not event.get("automatic"):
        replaced = event.get("replaced") or []
        return f"replaced {sum(int(n) for n in replaced)} dead codes"
    if kind == "restored":
        return f"restored {event.get('file') or 'last good state'} (lr ×{format_number(event.get('lr_scale', 1))})"
    return None


def marker_line(event: dict[str, Any], text: str, terms: list[str], index: int) -> pg.InfiniteLine:
    """The dashed vertical line for one change ``event`` labelled ``text``: coloured as the term
    it changed (one term) or red for a restore; ``index`` staggers the label heights."""
    colour = theme.TEXT_DIM
    changes = event.get("changes", {})
    if event.get("kind") == "weights" and len(changes) == 1 and next(iter(changes)) in terms:
        colour = theme.curve_color(terms.index(next(iter(changes))))
    elif event.get("kind") == "restored":
        colour = theme.ERROR
    short = text if len(text) <= 60 else text[:57] + "…"
    pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)
    line = pg.InfiniteLine(
        pos=float(event["step"]), angle=90, movable=False, pen=pen, label=short,
        labelOpts={
            "position": MARKER_POSITIONS[index % len(MARKER_POSITIONS)],
            # Right of the line in the view's left half, left of it in the right half.
            "color": colour, "fill": pg.mkBrush(theme.BACKGROUND + "c0"),
            "anchors": [(0, 0.5), (1, 0.5)],
        },
    )
    full = "\n".join(f"{term} {format_number(a)} → {format_number(b)}"
                     for term, (a, b) in changes.items()) if changes else text
    line.setToolTip(f"step {event['step']}:\n{full}")
    line.event_kind = event.get("kind")
    line.setZValue(-5)
    return line
