"""Root conftest: marks the project root for pytest.

nslab's plugin (fixtures/, installed as nslab.fixtures) is registered by its
pytest11 entry point when nslab is installed (./run install does it), so it is
not listed here: listing it too would be a second registration.
"""
