"""Wiring of the data_ingestion pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.data_ingestion.nodes import build_price_request, clean_prices


def create_pipeline(**kwargs) -> Pipeline:
    """Request -> (the archive fetches and stores raw objects) -> parse, validate, adjust."""
    return Pipeline(
        [
            Node(
                func=build_price_request,
                inputs={"params": "params:data_ingestion", "run_date": "params:run_date"},
                outputs="raw_prices",
                name="build_price_request_node",
            ),
            Node(
                func=clean_prices,
                inputs={
                    "raw_prices": "raw_prices",
                    "params": "params:data_ingestion",
                    "run_date": "params:run_date",
                },
                outputs=["prices", "data_quality_report"],
                name="clean_prices_node",
            ),
        ],
        outputs={"raw_prices", "prices", "data_quality_report"},
        parameters={"params:data_ingestion", "params:run_date"},
        namespace="data_ingestion",
    )
