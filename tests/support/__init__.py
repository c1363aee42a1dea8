"""Helpers shared by every test folder (importable as `support`: `[tool.pytest.ini_options] pythonpath`)."""
