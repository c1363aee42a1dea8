"""Vendor simulators: local, faithful imitations of each vendor's API for tests and demos."""
