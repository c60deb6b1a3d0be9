"""Deeper captures taken when a threshold fires or on "Capture now": one module per tool.

``base`` (running tools, the executor), ``service`` (which tool for which process), ``options``
(the CLI's trigger/capture options), and the tools: ``pyspy``, ``heaptrack``, ``node`` (with its
DevTools client in ``devtools``), plus ``flamegraph`` (SVG from py-spy's speedscope file) and
``detect`` (what kind of program a process is).
"""
