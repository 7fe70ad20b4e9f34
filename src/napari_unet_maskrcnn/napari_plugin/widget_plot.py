"""A small live plot of a training run, drawn with QPainter (no plotting library).

Left axis: the training loss of every step (blue). Right axis, 0..1: the validation score
of every epoch (orange dots joined by a line). The x axis is the optimisation step.
"""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_COLOUR = QColor(66, 133, 244)
SCORE_COLOUR = QColor(255, 152, 0)
MARGIN = 6
TEXT_HEIGHT = 16


class TrainingPlot(QWidget):
    """Loss per step and validation score per epoch of the run in progress.

    Attributes:
        losses: (step, loss) points received.
        scores: (step, score) points received, one per validated epoch.
        metric: name of the validation score (e.g. ``"ap50"``).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.losses: list[tuple[int, float]] = []
        self.scores: list[tuple[int, float]] = []
        self.metric = ""
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.setToolTip("Training loss per step (blue, left scale) and validation score per epoch "
                        "(orange, 0 to 1).")

    def clear(self) -> None:
        """Forget every point (a new run starts)."""
        self.losses.clear()
        self.scores.clear()
        self.metric = ""
        self.update()

    def add_loss(self, step: int, loss: float) -> None:
        """Add the loss of optimisation step ``step``."""
        self.losses.append((step, loss))
        self.update()

    def add_score(self, step: int, score: float, metric: str) -> None:
        """Add the validation ``metric`` (0..1) measured after step ``step``."""
        self.scores.append((step, score))
        self.metric = metric
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        area = QRectF(self.rect()).adjusted(MARGIN, MARGIN + TEXT_HEIGHT, -MARGIN, -MARGIN)
        painter.setPen(QPen(self.palette().mid().color()))
        painter.drawRect(area)
        painter.setPen(QPen(self.palette().text().color()))
        if not self.losses:
            painter.drawText(area, Qt.AlignCenter, "The loss appears here during training.")
            return
        last_step = max(self.losses[-1][0], self.scores[-1][0] if self.scores else 0, 1)
        top = max(loss for _, loss in self.losses) or 1.0
        self._polyline(painter, area, self.losses, last_step, top, LOSS_COLOUR)
        painter.setPen(LOSS_COLOUR)
        painter.drawText(QPointF(MARGIN, MARGIN + 12), f"loss {self.losses[-1][1]:.4g} (max {top:.3g})")
        if self.scores:
            points = self._polyline(painter, area, self.scores, last_step, 1.0, SCORE_COLOUR)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)
            text = f"{self.metric} {self.scores[-1][1]:.3f}"
            width = painter.fontMetrics().horizontalAdvance(text)
            painter.drawText(QPointF(self.width() - MARGIN - width, MARGIN + 12), text)

    @staticmethod
    def _polyline(painter: QPainter, area: QRectF, points, last_step: int, top: float,
                  colour: QColor) -> list[QPointF]:
        """Draw ``points`` (step, value) scaled to ``area``: x 0..last_step, y 0..top."""
        mapped = [
            QPointF(area.left() + area.width() * step / last_step,
                    area.bottom() - area.height() * min(max(value / top, 0.0), 1.0))
            for step, value in points
        ]
        painter.setPen(QPen(colour, 1.5))
        painter.setBrush(colour)
        painter.drawPolyline(QPolygonF(mapped))
        return mapped
