"""The built-in providers. Each registers through the `gateway.providers` entry-point group."""
