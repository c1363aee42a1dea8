"""An Azure-style batch document translation provider for the translation gateway (an example plugin)."""
