"""The datafold provider."""
