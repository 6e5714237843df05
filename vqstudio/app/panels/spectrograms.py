"""The Spectrograms panel: the probe clip as original, reconstruction and their difference.

Three images share their time and frequency axes (zoom one, all follow): the original's and the
reconstruction's spectra in dB on a fixed -100 .. 0 dBFS scale, and reconstruction minus original
on a diverging +-30 dB scale, where a hiss the model adds shows as red over quiet regions and
detail it loses as blue. Levels never follow the data, so successive probes compare by eye.

A loop region (a band dragged on the time axis) is offered to the audition panel through
:attr:`SpectrogramPanel.region_selected`; :meth:`SpectrogramPanel.set_playhead` draws the
player's position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from vqstudio.app import theme
from vqstudio.app.panels.plotstyle import overlay_title, style_plot, title_html

SPECTRUM_LEVELS = (-100.0, 0.0)  # dBFS: a full-scale sine peaks at 0
DIFFERENCE_LEVELS = (-30.0, 30.0)  # dB, reconstruction minus original
DIFFERENCE_COLORMAP = "CET-D4"  # blue - near-black - red: no difference reads as the background
LUT_POINTS = 256
WINDOW_SECONDS = 0.043  # ~1024 samples at 24 kHz: a usual speech/music analysis window


def stft_db(wave: np.ndarray, sample_rate: int, n_fft: int | None = None) -> tuple[np.ndarray, int, int]:
    """Magnitude spectrogram in dB relative to full scale: ``[T]`` -> ``([bins, frames], n_fft, hop)``.

    Hann window, hop n_fft / 4, frames centred on multiples of the hop (zero-padded ends); a
    full-scale sine reads 0 dB at its peak bin. Computed with numpy: a 4 s clip takes milliseconds.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if n_fft is None:
        n_fft = 1 << max(8, int(round(np.log2(WINDOW_SECONDS * sample_rate))))
    hop = n_fft // 4
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    padded = np.pad(wave, (n_fft // 2, n_fft // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[:: hop][: wave.shape[0] // hop + 1]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T  # [bins, frames]
    scale = window.sum() / 2.0
    db = 20.0 * np.log10(np.maximum(magnitude / scale, 1e-10))
    return db.astype(np.float32), n_fft, hop


def difference_db(original_db: np.ndarray, reconstruction_db: np.ndarray,
                  floor: float = SPECTRUM_LEVELS[0]) -> np.ndarray:
    """Reconstruction minus original in dB, both floored at ``floor`` first, so that bins silent
    in both read 0 rather than as the difference of two noise floors."""
    frames = min(original_db.shape[1], reconstruction_db.shape[1])
    a = np.maximum(original_db[:, :frames], floor)
    b = np.maximum(reconstruction_db[:, :frames], floor)
    return (b - a).astype(np.float32)


class SpectrogramPanel(QWidget):
    """Original | reconstruction | difference spectrograms of the probe clip, with a loop region
    and a playhead."""

    region_selected = Signal(float, float)  # (start_s, end_s), when the user moves the region

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self._version = -1
        self._probe: Any = None
        self._original_key: tuple | None = None
        self._original_db: np.ndarray | None = None
        self.duration = 0.0
        self.sample_rate = 0
        self.probe_step: int | None = None

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(theme.BACKGROUND)
        spectrum_map = pg.colormap.get(theme.SPECTROGRAM_COLORMAP)
        difference_map = pg.colormap.get(DIFFERENCE_COLORMAP)
        names = ("original", "reconstruction", "difference")
        self.plots: list[pg.PlotItem] = []
        self.images: dict[str, pg.ImageItem] = {}
        self.regions: list[pg.LinearRegionItem] = []
        self.playheads: list[pg.InfiniteLine] = []
        for row, name in enumerate(names):
            plot = self.view.addPlot(row=row, col=0)
            style_plot(plot, grid=False)
            plot.setMenuEnabled(False)
            # kHz ticks on all three, the axis name once (stacked, the names would overlap).
            # Ticks in kHz on all three (a fixed scale: SI prefixes only follow a shown label),
            # the axis name once in the middle, where stacked names would not overlap.
            plot.getAxis("left").setScale(1e-3)
            plot.setLabel("left", "frequency (kHz)" if row == 1 else None)
            plot.getAxis("left").showLabel(row == 1)
            plot.getAxis("left").setWidth(56)
            if row < len(names) - 1:
                plot.getAxis("bottom").setStyle(showValues=False)
            else:
                plot.setLabel("bottom", "time", units="s")
            if self.plots:
                plot.setXLink(self.plots[0])
                plot.setYLink(self.plots[0])
            image = pg.ImageItem(axisOrder="row-major")
            image.setAutoDownsample(True)
            plot.addItem(image)
            region = pg.LinearRegionItem(
                values=(0.0, 1.0), orientation="vertical",
                brush=pg.mkBrush(theme.ACCENT + "22"), hoverBrush=pg.mkBrush(theme.ACCENT + "38"),
                pen=pg.mkPen(theme.ACCENT, width=1), hoverPen=pg.mkPen(theme.ACCENT, width=2),
            )
            region.setZValue(10)
            region.setToolTip("loop region: drag its edges or the band")
            plot.addItem(region, ignoreBounds=True)
            playhead = pg.InfiniteLine(pos=0.0, angle=90, movable=False,
                                       pen=pg.mkPen(theme.TEXT, width=1))
            playhead.setZValue(20)
            playhead.setVisible(False)
            plot.addItem(playhead, ignoreBounds=True)
            self.plots.append(plot)
            self.images[name] = image
            self.regions.append(region)
            self.playheads.append(playhead)
        self.titles = {name: overlay_title(plot) for name, plot in zip(names, self.plots)}
        self._set_titles()

        # Fixed levels, a 256-entry table: the colour bars own both and never auto-scale.
        self.spectrum_bar = pg.ColorBarItem(values=SPECTRUM_LEVELS, colorMap=spectrum_map,
                                            label="dBFS", interactive=False, width=14)
        self.spectrum_bar.setImageItem([self.images["original"], self.images["reconstruction"]])
        self.difference_bar = pg.ColorBarItem(values=DIFFERENCE_LEVELS, colorMap=difference_map,
                                              label="dB", interactive=False, width=14)
        self.difference_bar.setImageItem(self.images["difference"])
        for bar in (self.spectrum_bar, self.difference_bar):
            bar.axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
            bar.axis.setPen(pg.mkPen(theme.BORDER))
        self.view.addItem(self.spectrum_bar, row=0, col=1, rowspan=2)
        self.view.addItem(self.difference_bar, row=2, col=1)
        for name, cmap in (("original", spectrum_map), ("reconstruction", spectrum_map),
                           ("difference", difference_map)):
            self.images[name].setLookupTable(cmap.getLookupTable(nPts=LUT_POINTS))

        for region in self.regions:
            region.sigRegionChanged.connect(self._region_moved)
            region.sigRegionChangeFinished.connect(self._region_finished)

        self.placeholder = QLabel("The probe clip appears here once training runs.")
        self.placeholder.setObjectName("placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.view, 1)
        self.view.setVisible(False)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Recompute the spectrograms when a new probe arrived; cheap otherwise."""
        store = self.store
        if store.version == self._version:
            return
        self._version = store.version
        probe = store.probe
        if not probe or probe is self._probe:
            return
        self._probe = probe
        self.show_probe(probe["original"], probe["reconstruction"], int(probe["sample_rate"]),
                        probe.get("step"))

    def show_probe(self, original: np.ndarray, reconstruction: np.ndarray, sample_rate: int,
                   step: int | None = None) -> None:
        """Draw ``original`` and ``reconstruction`` (mono ``[T]``) and their difference."""
        original = np.asarray(original, dtype=np.float32).reshape(-1)
        reconstruction = np.asarray(reconstruction, dtype=np.float32).reshape(-1)
        length = min(original.shape[0], reconstruction.shape[0])
        original, reconstruction = original[:length], reconstruction[:length]
        # The probe clip stays the same for a whole run: analyse it once.
        key = (sample_rate, length, hash(original.tobytes()))
        if key != self._original_key or self._original_db is None:
            self._original_db, n_fft, hop = stft_db(original, sample_rate)
            self._original_key = key
        recon_db, n_fft, hop = stft_db(reconstruction, sample_rate)
        diff = difference_db(self._original_db, recon_db)
        for name, data, levels in (("original", self._original_db, SPECTRUM_LEVELS),
                                   ("reconstruction", recon_db, SPECTRUM_LEVELS),
                                   ("difference", diff, DIFFERENCE_LEVELS)):
            image = self.images[name]
            image.setImage(data, autoLevels=False, levels=levels)
            bins, frames = data.shape
            bin_hz, frame_s = sample_rate / n_fft, hop / sample_rate
            image.setRect(QRectF(-0.5 * frame_s, -0.5 * bin_hz, frames * frame_s, bins * bin_hz))
        new_clip = length / sample_rate != self.duration or sample_rate != self.sample_rate
        self.duration, self.sample_rate, self.probe_step = length / sample_rate, sample_rate, step
        if new_clip:
            for region in self.regions:
                region.setBounds((0.0, self.duration))
            self.set_region(0.0, self.duration)
            self.plots[0].setXRange(0.0, self.duration, padding=0.0)
            self.plots[0].setYRange(0.0, sample_rate / 2, padding=0.0)
            for plot in self.plots:
                plot.setLimits(xMin=-0.05 * self.duration, xMax=1.05 * self.duration,
                               yMin=0.0, yMax=sample_rate / 2)
        self._set_titles()
        self.placeholder.setVisible(False)
        self.view.setVisible(True)

    def set_region(self, start_s: float, end_s: float) -> None:
        """Place the loop region without emitting :attr:`region_selected`."""
        for region in self.regions:
            region.blockSignals(True)
            region.setRegion((start_s, end_s))
            region.blockSignals(False)

    def region(self) -> tuple[float, float]:
        start, end = self.regions[0].getRegion()
        return float(start), float(end)

    def set_playhead(self, seconds: float | None) -> None:
        """Draw the player's position (None hides it)."""
        for line in self.playheads:
            if seconds is None or seconds < 0:
                line.setVisible(False)
            else:
                line.setPos(float(seconds))
                line.setVisible(True)

    # -- internals ----------------------------------------------------------------------------

    def _set_titles(self) -> None:
        step = f" @ step {self.probe_step}" if self.probe_step is not None else ""
        texts = {
            "original": ("original", theme.ORIGINAL_COLOR),
            "reconstruction": (f"reconstruction{step}", theme.RECONSTRUCTION_COLOR),
            "difference": ("reconstruction − original: red = added, blue = lost", theme.TEXT),
        }
        for name, item in self.titles.items():
            text, colour = texts[name]
            item.setHtml(title_html(text, colour))

    def _region_moved(self, moved: pg.LinearRegionItem) -> None:
        """Keep the three plots' regions together while one is dragged."""
        values = moved.getRegion()
        for region in self.regions:
            if region is not moved:
                region.blockSignals(True)
                region.setRegion(values)
                region.blockSignals(False)

    def _region_finished(self, moved: pg.LinearRegionItem) -> None:
        self._region_moved(moved)  # the drag's last step emits only "finished"
        start, end = moved.getRegion()
        self.region_selected.emit(float(start), float(end))
