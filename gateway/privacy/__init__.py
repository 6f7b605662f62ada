"""Data privacy: data classes, their resolution per request, the content detector, audit."""
