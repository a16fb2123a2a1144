"""The deployable models as MLflow pyfuncs. Importing this package imports mlflow; loading a
Ludwig model imports Ludwig and torch, so only code that trains, registers or serves imports it."""
