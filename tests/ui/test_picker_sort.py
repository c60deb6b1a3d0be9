"""The attach picker orders by RSS numerically, whatever the sizes on the host.

A real process table holds processes of several GiB (a browser, an IDE); PySide6 passes a Python int of
2**31 or more to Qt in a form the proxy model does not compare as a number, so the list came out of
order on every such host (``test_picker_lists_the_process_sorted_by_rss…`` failed there, and passed
in a container where every process is small). These rows are real ``ProcRow``s in the real model.
"""

from __future__ import annotations

from PySide6 import QtCore

from memview.ui.process_picker import ProcessModel, ProcRow, _Filter

GiB = 2**30


def test_rss_sort_is_numeric_past_two_gib(qapp) -> None:
    sizes = [5 * GiB, 3 * GiB, 2**31 - 1, 2**31 + 5, 100 * 2**20, 0, None, 7 * 2**20]
    model = ProcessModel()
    model.merge([ProcRow(pid, 0.0, f"p{pid}", "root", rss, "cmd") for pid, rss in enumerate(sizes, start=1)])
    proxy = _Filter()
    proxy.setSourceModel(model)
    proxy.sort(3, QtCore.Qt.SortOrder.DescendingOrder)
    shown = [model.rows[proxy.mapToSource(proxy.index(i, 0)).row()].rss for i in range(proxy.rowCount())]
    assert shown == [5 * GiB, 3 * GiB, 2**31 + 5, 2**31 - 1, 100 * 2**20, 7 * 2**20, 0, None]
