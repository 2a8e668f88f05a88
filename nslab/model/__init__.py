"""The model: labs as plain, validated data (what should be). Imports nothing else of nslab."""
