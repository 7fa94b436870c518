"""The trace viewer as ipywidgets: filters, order, next / previous and a slider over a
:class:`~think2seg.reports.viewer.state.TraceState`, and one panel per run (image with overlays + text).

>>> from think2seg.reports.viewer import view
>>> view(["runs/03_grpo/eval/before_tiny_", "runs/03_grpo/eval/after_GRPO_think2seg_"])   # doctest: +SKIP

Every control only changes the state and redraws the selected sample; images and masks are decoded once per
sample and cached by each :class:`~think2seg.reports.viewer.runs.TraceRun`. Widgets carry CSS classes
(``t2s-next``, ``t2s-prev``, ``t2s-slider``, ``t2s-image``, ``t2s-text``) for scripted front-end tests.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from think2seg.reports.viewer.render import CSS, LEGEND, panel_jpeg, panel_text, sample_header
from think2seg.reports.viewer.state import OUTCOMES, TraceState

_SORTS = [("dataset order", ("order", False)), ("IoU ascending", ("iou", False)),
          ("IoU descending", ("iou", True))]
_DELTA_SORTS = [("ΔIoU ascending", ("delta", False)), ("ΔIoU descending", ("delta", True))]


def _dropdown(label: str, values: list[str]) -> w.Dropdown:
    """Choices plus "all" (value ``""``: a None value would show as no selection)."""
    return w.Dropdown(options=[("all", ""), *[(v.replace("_", " "), v) for v in values]], value="",
                      description=label, layout=w.Layout(width="230px"))


class TraceViewer(w.VBox):
    """A VBox showing ``state`` (display it, or make it a cell's last expression)."""

    def __init__(self, state: TraceState, **kwargs: Any):
        self.state = state
        self._busy = False
        self.category = _dropdown("category", state.choices("category"))
        self.kind = _dropdown("question", state.choices("kind"))
        self.outcome = _dropdown("outcome", list(OUTCOMES))
        self.parse = _dropdown("parse", ["failed", "ok"])
        self.iou_range = w.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.01, description="IoU",
                                            continuous_update=False, layout=w.Layout(width="320px"))
        sorts = _SORTS + (_DELTA_SORTS if len(state.runs) > 1 else [])
        self.order = w.Dropdown(options=sorts, value=("order", False), description="sort",
                                layout=w.Layout(width="260px"))
        self.prev_button = w.Button(description="prev", icon="arrow-left", layout=w.Layout(width="90px"))
        self.next_button = w.Button(description="next", icon="arrow-right", layout=w.Layout(width="90px"))
        self.slider = w.IntSlider(min=1, max=1, value=1, description="sample", continuous_update=False,
                                  layout=w.Layout(width="420px"))
        self.count = w.Label()
        self.header = w.HTML()
        self.images = [w.Image(format="jpeg", layout=w.Layout(max_width="480px")) for _ in state.runs]
        self.texts = [w.HTML(layout=w.Layout(width="480px")) for _ in state.runs]
        for name, widget in (("t2s-prev", self.prev_button), ("t2s-next", self.next_button),
                             ("t2s-slider", self.slider), ("t2s-count", self.count), ("t2s-header", self.header)):
            widget.add_class(name)
        for img, txt in zip(self.images, self.texts, strict=True):
            img.add_class("t2s-image")
            txt.add_class("t2s-text")

        filters = [c for c in (self.category, self.kind) if len(c.options) > 1]
        filters += [self.outcome, self.parse]
        for c in (*filters, self.iou_range, self.order):
            c.observe(self._on_filter, names="value")
        self.prev_button.on_click(lambda _: self._go(self.state.position - 1))
        self.next_button.on_click(lambda _: self._go(self.state.position + 1))
        self.slider.observe(lambda ch: self._go(ch["new"] - 1), names="value")  # the slider counts from 1
        panels = w.HBox([w.VBox([img, txt]) for img, txt in zip(self.images, self.texts, strict=True)])
        super().__init__([
            w.HTML(f"<style>{CSS}</style>{LEGEND}"),
            w.HBox(filters[:2]), w.HBox([*filters[2:], self.iou_range, self.order]),
            w.HBox([self.prev_button, self.slider, self.next_button, self.count]),
            self.header, panels,
        ], **kwargs)
        self.add_class("t2s-viewer")
        self._refresh()

    def _on_filter(self, _change: Any = None) -> None:
        lo, hi = self.iou_range.value
        sort, desc = self.order.value
        self.state.update(category=self.category.value or None, kind=self.kind.value or None,
                          outcome=self.outcome.value or None, parse=self.parse.value or None, iou=None if (lo, hi) == (0.0, 1.0) else (lo, hi),
                          sort=sort, descending=desc)
        self._refresh()

    def _go(self, position: int) -> None:
        if self._busy:
            return
        self.state.go(position)
        self._refresh()

    def _refresh(self) -> None:
        """Sync the navigation controls with the state and draw the selected sample."""
        self._busy = True
        try:
            n = len(self.state)
            self.slider.max = max(n, 1)
            self.slider.value = self.state.position + 1
            self.slider.disabled = n <= 1
            self.prev_button.disabled = self.state.position <= 0
            self.next_button.disabled = self.state.position >= n - 1
            self.count.value = f"{self.state.position + 1 if n else 0} / {n} samples"
        finally:
            self._busy = False
        sid = self.state.current
        if sid is None:
            self.header.value = "<b>no sample passes the filters</b>"
            for img, txt in zip(self.images, self.texts, strict=True):
                img.value, txt.value = b"", ""
            return
        self.header.value = sample_header(self.state, sid)
        for run, img, txt in zip(self.state.runs, self.images, self.texts, strict=True):
            img.value = panel_jpeg(run, sid)
            txt.value = panel_text(run, sid)
