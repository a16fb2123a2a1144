"""kedro-viz previews of wrapped datasets: AtomicDataset hands on its dataset's ``preview``."""

from __future__ import annotations

import inspect

from kedro_datasets._typing import JSONPreview, TablePreview

from stock_mlops.datasets import AtomicDataset


def test_a_wrapped_table_previews_like_the_table(tmp_path, small_prices):
    dataset = AtomicDataset(dataset="pandas.ParquetDataset", filepath=str(tmp_path / "p.parquet"))
    dataset.save(small_prices)

    preview = dataset.preview(nrows=5)
    # kedro-viz reads the kind of preview from the method's return annotation.
    assert inspect.signature(dataset.preview).return_annotation in (TablePreview, "TablePreview")
    assert preview["columns"] == list(small_prices.columns)
    assert len(preview["data"]) == 5
    assert preview["data"][0][0] == small_prices.iloc[0]["symbol"]


def test_a_wrapped_document_previews_as_json(tmp_path):
    dataset = AtomicDataset(dataset="json.JSONDataset", filepath=str(tmp_path / "d.json"))
    dataset.save({"alert": False, "run_date": "2023-12-29"})
    assert inspect.signature(dataset.preview).return_annotation in (JSONPreview, "JSONPreview")
    assert "2023-12-29" in str(dataset.preview())


def test_a_wrapped_dataset_without_preview_offers_none(tmp_path):
    dataset = AtomicDataset(dataset="text.TextDataset", filepath=str(tmp_path / "page.html"))
    assert not hasattr(dataset, "preview")
