"""The gateway's aiohttp HTTP API (contract section 2)."""
