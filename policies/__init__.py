"""The routing brain as pure functions: stdlib only, no I/O, no asyncio, no clock reads."""
