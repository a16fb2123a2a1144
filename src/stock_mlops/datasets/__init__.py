"""Custom Kedro datasets: all of the project's I/O beyond Kedro's own datasets lives here."""

from stock_mlops.datasets.broker import BrokerAccountDataset, BrokerOrdersDataset
from stock_mlops.datasets.mlflow_views import MlflowInputDataset, MlflowParamsDataset
from stock_mlops.datasets.models import (
    ChampionModelDataset,
    PyfuncModelDataset,
    RegisteredModelDataset,
)
from stock_mlops.datasets.monitoring import EvidentlyWorkspaceDataset, OptionalDataset
from stock_mlops.datasets.previous import EarlierRunDataset
from stock_mlops.datasets.raw_prices import RawPriceArchiveDataset
from stock_mlops.datasets.run_info import (
    MlflowTagsDataset,
    MlflowTrialRunsDataset,
    RunInfoDataset,
)
from stock_mlops.datasets.serving import PriceModelDataset
from stock_mlops.datasets.tables import AppendOnlyParquetDataset, AtomicDataset
from stock_mlops.datasets.team_outputs import TeamOutputsDataset

__all__ = [
    "AppendOnlyParquetDataset",
    "AtomicDataset",
    "BrokerAccountDataset",
    "BrokerOrdersDataset",
    "ChampionModelDataset",
    "EarlierRunDataset",
    "EvidentlyWorkspaceDataset",
    "MlflowInputDataset",
    "MlflowParamsDataset",
    "MlflowTagsDataset",
    "MlflowTrialRunsDataset",
    "OptionalDataset",
    "PriceModelDataset",
    "PyfuncModelDataset",
    "RawPriceArchiveDataset",
    "RegisteredModelDataset",
    "RunInfoDataset",
    "TeamOutputsDataset",
]
