"""Recognisers: pure functions of console bytes. Bytes in, in any chunking; events out."""
