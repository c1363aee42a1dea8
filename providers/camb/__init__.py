"""The camb provider."""
