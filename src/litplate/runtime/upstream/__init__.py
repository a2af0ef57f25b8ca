"""One module per upstream bug worked around, citing the issue; tests/test_upstream.py shows each bug."""
