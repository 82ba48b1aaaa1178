"""Real-world models for the round-trip corpus, in importable modules.

`assert_roundtrip(..., fresh_process=True)` reloads each file in a new Python
process that imports the modules the saved classes were registered from, so
the classes live here rather than in the test files' functions.
"""
