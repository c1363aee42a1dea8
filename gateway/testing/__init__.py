"""Test helpers for provider plugins: cassette recording and the conformance kit."""
