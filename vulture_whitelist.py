"""Names vulture cannot see used: real code reached by a framework, a protocol or a test.

``tests/test_dead_code.py`` runs ``python3 -m vulture memview vulture_whitelist.py --min-confidence 60``
and fails on any finding. Add a name here only with the reason it is alive; dead code is deleted.
Each line reads an attribute of ``_`` (vulture only parses this file; it is never imported).
"""

# -- recorder listener hooks: the recorder calls them on each listener it holds (Listener Protocol)
_.Listener  # memview/recorder.py: the Protocol itself
_.on_batch
_.on_closing
_.on_end
_.on_phase
_.on_capture
_.on_process_exit
_.on_store_error

# -- Qt virtual methods: Qt calls the Python override
_.paint
_.paintEvent
_.mouseMoveEvent
_.mousePressEvent
_.columnCount
_.headerData
_.filterAcceptsRow
_.sizeHint
_.tickStrings  # pyqtgraph AxisItem

# -- references kept only so an object lives as long as its owner (Qt/pyqtgraph would drop it)
_._proxy  # memview/ui/plot_area.py: the SignalProxy rate-limiting mouse moves
_._memview_icon_provider  # memview/ui/file_dialogs.py: the dialog does not own its icon provider

# -- pytest hooks (memview/pytest_plugin.py is a pytest11 entry point) and hook signatures
_.pytest_addoption
_.pytest_configure
_.pytest_collection_modifyitems
_.pytest_runtest_logreport
_.pytest_sessionstart
_.pytest_sessionfinish
_.pytest_terminal_summary
_.exitstatus  # pytest_terminal_summary's signature
_.tb  # memview/probe.py: __exit__(exc_type, exc, tb)

# -- click: commands registered by decorator, a Group override
_.export_command
_.import_command
_.compare_command
_.install_desktop
_.format_commands

# -- the standard library calls these
_.do_GET  # http.server handler
_.log_message
_.address_family  # socketserver
_.daemon_threads
_.row_factory  # sqlite3.Connection
_.initial  # memview/store.py: a migration, registered by sqlite-utils' decorator

# -- dataclass fields read by name (asdict, to_row, the JSON summary)
_.duration_s
_.footprint_bytes
_.avg_rss_bytes
_.final_rss_bytes
_.wall_s

# -- what the tests and benchmarks read to observe the code (counters, probes of what is shown)
_.wait_idle  # captures/executor.py
_.stops  # collectors/tracer.py: ptrace stops handled (docs' and benchmarks' figures)
_.failing  # collectors/endpoint.py
_.clamped  # store.py
_.suppressed  # triggers.py
_.NODE_PROBE  # resources.py
_.contrast  # ui/theme.py
_.dark_palette
_.paints
_.redraws
_.rounds
_.visible_rows
_.visible_ids
_.visible_pids
_.visible_mark_labels
_.plain_text
_.align_at
_.legend_labels
_.site_rows
_.last_export
_.last_import
_.changes  # compare.py: tests/test_compare.py checks every figure through it

# -- store: a migration step sqlite-migrate calls through its decorator; the bulk writer the day
# -- benchmark (benchmarks/bench_day.py) and tests/test_store_window.py write synthetic sessions with
_.chunk_bounds  # memview/store/schema.py: @migrations(name="0002_chunk_bounds")
_.append_arrays  # memview/store/reader.py
