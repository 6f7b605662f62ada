"""HTTP routes: thin handlers that parse, call one function and shape the reply."""
