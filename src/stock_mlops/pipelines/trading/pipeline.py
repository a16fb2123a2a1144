"""Wiring of the trading pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.trading.nodes import (
    build_submission,
    decide_trades,
    reconcile_orders,
    record_decisions,
    request_account_snapshot,
)


def create_pipeline(**kwargs) -> Pipeline:
    """account snapshot -> decide (risk limits) -> log -> submit idempotently -> reconcile."""
    return Pipeline(
        [
            Node(
                func=request_account_snapshot,
                inputs={
                    "prices": "prices",
                    "params": "params:trading",
                    "run_date": "params:run_date",
                },
                outputs="broker_account",
                name="request_account_snapshot_node",
            ),
            Node(
                func=decide_trades,
                inputs={
                    "predictions": "predictions",
                    "prices": "prices",
                    "broker_account": "broker_account",
                    "params": "params:trading",
                    "team": "params:team",
                    "run_date": "params:run_date",
                },
                outputs="decided_orders",
                name="decide_trades_node",
            ),
            Node(
                func=record_decisions,
                inputs={
                    "decided_orders": "decided_orders",
                    "run_info": "run_info",
                    "broker": "params:trading.broker",
                },
                outputs="orders",
                name="record_decisions_node",
            ),
            Node(
                func=build_submission,
                inputs={
                    "decided_orders": "decided_orders",
                    "prices": "prices",
                    "params": "params:trading",
                    "run_date": "params:run_date",
                },
                outputs="broker_orders",
                name="build_submission_node",
            ),
            Node(
                func=reconcile_orders,
                inputs={"decided_orders": "decided_orders", "broker_orders": "broker_orders"},
                outputs="order_reconciliation",
                name="reconcile_orders_node",
            ),
        ],
        inputs={"prices", "predictions", "run_info"},
        outputs={"broker_account", "orders", "broker_orders", "order_reconciliation"},
        parameters={"params:trading", "params:team", "params:run_date", "params:trading.broker"},
        namespace="trading",
    )
