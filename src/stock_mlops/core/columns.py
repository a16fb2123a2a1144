"""Column names of the public datasets (see docs/CONTRACT.md). One place, so names never drift."""

SYMBOL = "symbol"
DATE = "date"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"

PRICE_COLUMNS = [SYMBOL, DATE, OPEN, HIGH, LOW, CLOSE, VOLUME]
OHLC = [OPEN, HIGH, LOW, CLOSE]

TARGET_CLOSE = "target_close_1d"
TARGET_RETURN = "target_return_1d"
TARGET_DIRECTION = "target_direction_1d"
TARGET_DATE = "target_date"
TARGETS = [TARGET_CLOSE, TARGET_RETURN, TARGET_DIRECTION]

# Values of target_direction_1d and of predicted directions.
UP, DOWN, FLAT = "up", "down", "flat"

# Prediction log (the `predictions` dataset).
PREDICTION_LOG_COLUMNS = [
    "run_id",
    "model_version",
    "team",
    SYMBOL,
    "feature_date",
    TARGET_DATE,
    "last_close",
    "prediction",
    "predicted_return",
    "predicted_direction",
    "created_at",
]
# A prediction is identified by these; re-running the same day must not duplicate them.
PREDICTION_KEY = ["team", SYMBOL, TARGET_DATE, "model_version"]

# Out-of-sample evaluation rows (the `evaluation_predictions` dataset).
EVALUATION_COLUMNS = [
    SYMBOL,
    DATE,
    "feature_date",
    "model",
    "split",
    "fold",
    "last_close",
    "prediction",
    "actual",
]
