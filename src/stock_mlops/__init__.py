"""stock-mlops: daily stock prediction and paper trading for competing teams, on Kedro."""

__version__ = "0.1.0"
