"""A self-test of the Qt binding, run once at start-up.

Some PySide6 releases (6.12.0 here; 6.9.1/6.9.2 had relatives) mishandle reference counts in
the ``QGraphicsItem.itemChange`` virtual that every pyqtgraph item overrides: each call drops a
reference to ``None``/``True``, and after some seconds of live plotting the interpreter aborts
("deallocating None"), taking the recording window with it. Probing the actual failure costs
microseconds and catches releases no version list knows about yet.
"""

from __future__ import annotations

import sys

PROBE_CALLS = 64


def binding_problem() -> str | None:
    """None when the binding is sound, else a one-line explanation (needs a QApplication)."""
    import PySide6
    from PySide6 import QtCore, QtWidgets

    class _Probe(QtWidgets.QGraphicsObject):
        def boundingRect(self) -> QtCore.QRectF:  # noqa: N802
            return QtCore.QRectF()

        def paint(self, *_: object) -> None:
            pass

        def itemChange(self, change: object, value: object) -> object:  # noqa: N802
            return super().itemChange(change, value)

    scene = QtWidgets.QGraphicsScene()
    item = _Probe()
    scene.addItem(item)
    flag = QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIsMovable
    singletons = (None, True, False)
    before = [sys.getrefcount(x) for x in singletons]
    for i in range(PROBE_CALLS):
        item.setFlag(flag, bool(i % 2))
        item.setVisible(bool(i % 2))
    after = [sys.getrefcount(x) for x in singletons]
    lost = max(b - a for b, a in zip(before, after))
    scene.removeItem(item)
    if lost >= PROBE_CALLS // 2:
        return (
            f"PySide6 {PySide6.__version__} has a reference-counting bug that crashes the plots after a few "
            "seconds; install another release: pip install 'PySide6-Essentials>=6.6,!=6.12.0'"
        )
    return None
