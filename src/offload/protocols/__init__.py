"""Wire protocols: pure functions turning core types into each API's JSON and back (no I/O)."""
