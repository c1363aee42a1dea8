"""The doc_translator provider."""
