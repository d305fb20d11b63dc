"""pyqtgraph plots in the palette's colours: loss curves and contributor weight bars."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from studio.ui import theme


def _style(w: pg.PlotWidget) -> None:
    pal = QGuiApplication.palette()
    w.setBackground(pal.base().color())
    fg = pal.text().color()
    for axis in ("left", "bottom"):
        ax = w.getAxis(axis)
        ax.setPen(pg.mkPen(fg))
        ax.setTextPen(pg.mkPen(fg))
    w.showGrid(x=True, y=True, alpha=0.15)


class LossPlot(pg.PlotWidget):
    """A loss curve by step: `series` "train" (solid), "validation" (dots and a line) or
    "both" (the comparison view's default)."""

    def __init__(self, parent: QWidget | None = None, *, series: str = "both") -> None:
        super().__init__(parent)
        self.series = series
        names = {
            "train": ("Training loss", "Training loss by step (every step of the run)"),
            "validation": (
                "Validation loss",
                "Loss on the held-out validation rows: before training, at each checkpoint and "
                "at the end. Rising while the training loss falls means overfitting.",
            ),
            "both": ("Loss curve", "Training loss (solid) and validation loss (dots) by step"),
        }
        title, tip = names[series]
        self.setAccessibleName(title)
        self.setToolTip(tip)
        _style(self)
        if series != "both":
            self.setTitle(title, color=QGuiApplication.palette().text().color().name())
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.setMinimumHeight(160)
        self.legend = self.addLegend(offset=(-10, 10)) if series == "both" else None
        self._train = self.plot(
            [], [], pen=pg.mkPen(theme.contributor_color(0), width=2), name="train"
        )
        self._val = self.plot(
            [],
            [],
            pen=pg.mkPen(theme.contributor_color(1), width=1) if series == "validation" else None,
            symbol="o",
            symbolSize=7,
            symbolBrush=theme.contributor_color(1),
            symbolPen=None,
            name="validation",
        )

    def set_curves(
        self, train: Sequence[tuple[int, float]], val: Sequence[tuple[int, float]]
    ) -> None:
        if self.series == "validation":
            train = ()
        elif self.series == "train":
            val = ()
        self._train.setData([s for s, _ in train], [v for _, v in train])
        self._val.setData([s for s, _ in val], [v for _, v in val])

    def set_many(self, curves: Sequence[tuple[str, Sequence[tuple[int, float]]]]) -> None:
        self.clear()
        self.legend = self.addLegend(offset=(-10, 10))
        for i, (name, pts) in enumerate(curves):
            self.plot(
                [s for s, _ in pts],
                [v for _, v in pts],
                pen=pg.mkPen(theme.contributor_color(i), width=2),
                name=name,
            )


class WeightBars(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Contributor weights")
        self.setToolTip("Each contributor's share of this answer, in basis points (10,000 = all)")
        _style(self)
        self.setLabel("left", "bps")
        self.setMinimumHeight(140)
        self.setMouseEnabled(False, False)
        self.hideButtons()

    def set_weights(self, weights: Sequence[tuple[str, int, int]]) -> None:
        """(label, bps, colour index) per contributor, largest first."""
        self.clear()
        if not weights:
            return
        xs = list(range(len(weights)))
        bars = pg.BarGraphItem(
            x=xs,
            height=[b for _, b, _ in weights],
            width=0.6,
            brushes=[theme.contributor_color(c) for _, _, c in weights],
            pens=[None] * len(weights),
        )
        self.addItem(bars)
        self.getAxis("bottom").setTicks([[(i, lab) for i, (lab, _, _) in enumerate(weights)]])
        self.setYRange(0, max(b for _, b, _ in weights) * 1.1)
