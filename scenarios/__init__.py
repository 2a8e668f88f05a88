"""The tutorials as tests, one module per scenario; installed as nslab.scenarios (`nslab test`)."""
