"""One folder per pipeline; each exposes ``create_pipeline()``."""
