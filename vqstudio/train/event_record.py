"""What a trainer tells between steps: the events it records (``events.jsonl`` with a run folder)
and the results of the commands it served, each handed out once by :meth:`EventRecord.drain`
(and so in the next step's report).

A mix-in of :class:`~vqstudio.train.trainer.Trainer`, which owns ``events`` (the run folder's
event writer, or None) and ``step_count``; every event carries the step it happened at.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any


class EventRecord:
    """``record_event``, ``tagged_events`` and ``drain``; :meth:`_start_event_record` first."""

    events: Any
    step_count: int

    def _start_event_record(self) -> None:
        self._pending_events: list[dict[str, Any]] = []
        self._event_tags: dict[str, Any] = {}  # added to every event (tagged_events)
        self.events_recorded = 0
        self._results: list[dict[str, Any]] = []

    def record_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Log an event at the current step (events.jsonl with a run folder); it is handed out by
        the next :meth:`drain` (and so in the next report)."""
        fields = {**fields, **self._event_tags}
        self.events_recorded += 1
        if self.events is not None:
            event = self.events.write(kind, self.step_count, **fields)
        else:
            event = {"kind": kind, "step": self.step_count, "time": time.time(), **fields}
        self._pending_events.append(event)
        return event

    @contextlib.contextmanager
    def tagged_events(self, **tags: Any):
        """Every event recorded inside carries ``tags`` (a control line's id, its source)."""
        saved, self._event_tags = self._event_tags, {**self._event_tags, **tags}
        try:
            yield
        finally:
            self._event_tags = saved

    def drain(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The events and results produced since the last drain, each handed out once."""
        events, self._pending_events = self._pending_events, []
        results, self._results = self._results, []
        return events, results
