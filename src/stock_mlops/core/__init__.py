"""Domain code shared by several pipelines: schemas, calendar, metrics, strategy, model wrapper.

Pipelines import from here, never from each other. Nothing here imports a heavy library
(ludwig, torch, evidently, mlflow) at module level.
"""
