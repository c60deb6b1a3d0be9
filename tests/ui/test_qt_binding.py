"""The one UI test that runs when the Qt binding is broken (tests/ui/conftest.py skips the others).

A binding with the reference-counting bug aborts the interpreter mid-suite, so the other UI tests
skip with its explanation; this test fails with the same explanation, so the run is red, not
quietly green with a page of skips.
"""

from __future__ import annotations

from memview.ui.qt_check import binding_problem


def test_qt_binding_is_sound(qapp) -> None:
    assert binding_problem() is None
