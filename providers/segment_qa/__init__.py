"""The segment_qa provider."""
