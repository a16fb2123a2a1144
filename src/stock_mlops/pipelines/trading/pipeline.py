"""Wiring of the trading pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.trading.nodes import (
    build_submission,
    decide_trades,
    reconcile_orders,
    request_account_snapshot,
)


def create_pipeline(**kwargs) -> Pipeline:
    """account snapshot -> decide (risk limits) -> submit idempotently -> reconcile."""
    return Pipeline(
        [
            Node(
                func=request_account_snapshot,
                inputs=["prices", "params:trading", "params:run_date"],
                outputs="broker_account",
                name="request_account_snapshot_node",
            ),
            Node(
                func=decide_trades,
                inputs=[
                    "predictions",
                    "prices",
                    "broker_account",
                    "params:trading",
                    "params:team",
                    "params:run_date",
                    "run_info",
                ],
                outputs=["orders", "decided_orders"],
                name="decide_trades_node",
            ),
            Node(
                func=build_submission,
                inputs=["decided_orders", "prices", "params:trading", "params:run_date"],
                outputs="broker_orders",
                name="build_submission_node",
            ),
            Node(
                func=reconcile_orders,
                inputs=["decided_orders", "broker_orders"],
                outputs="order_reconciliation",
                name="reconcile_orders_node",
            ),
        ]
    )
