"""Root conftest: loads the nslab pytest plugin for scenarios/, tests/ and exercises/."""

pytest_plugins = ["fixtures.plugin", "fixtures.features", "fixtures.reporting"]
