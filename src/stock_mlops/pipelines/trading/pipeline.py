"""Wiring of the trading pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.trading.nodes import (
    build_submission,
    decide_trades,
    reconcile_orders,
    record_account_history,
    record_decisions,
    record_order_events,
    report_account,
    request_account_snapshot,
)


def create_pipeline(**kwargs) -> Pipeline:
    """account snapshot -> decide (risk limits) -> log the decisions -> submit idempotently ->
    reconcile -> log each order's status history and the account's equity -> account report.

    ``orders`` and ``order_events`` are one file (the orders log) written at two moments: the
    decisions before anything is sent, the broker's reports after. ``broker_account`` loaded after
    the submission is the account as this run leaves it.
    """
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
                outputs=["orders", "logged_decisions"],
                name="record_decisions_node",
            ),
            Node(
                func=build_submission,
                inputs={
                    "decided_orders": "logged_decisions",
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
            Node(
                func=record_order_events,
                inputs={
                    "broker_orders": "broker_orders",
                    "broker_account": "broker_account",
                    "run_info": "run_info",
                    "team": "params:team",
                    "broker": "params:trading.broker",
                },
                outputs="order_events",
                name="record_order_events_node",
            ),
            Node(
                func=record_account_history,
                inputs={"broker_account": "broker_account", "broker_orders": "broker_orders"},
                outputs="account_history",
                name="record_account_history_node",
            ),
            Node(
                func=report_account,
                inputs={
                    "broker_account": "broker_account",
                    "order_events": "order_events",
                    "account_history": "account_history",
                    "predictions": "predictions",
                    "params": "params:trading",
                    "team": "params:team",
                },
                outputs=["account_report", "account_report_html"],
                name="report_account_node",
            ),
        ],
        inputs={"prices", "predictions", "run_info"},
        outputs={
            "broker_account",
            "orders",
            "broker_orders",
            "order_reconciliation",
            "order_events",
            "account_history",
            "account_report",
            "account_report_html",
        },
        parameters={"params:trading", "params:team", "params:run_date", "params:trading.broker"},
        namespace="trading",
    )
