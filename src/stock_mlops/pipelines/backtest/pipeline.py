"""Wiring of the backtest pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.backtest.nodes import (
    backtest_mlflow_metrics,
    equity_plot_table,
    permutation_test,
    plan_backtest,
    plot_backtest_report,
    plot_drawdown,
    plot_equity,
    run_backtest,
    summarise_backtest,
)


def create_pipeline(**kwargs) -> Pipeline:
    """out-of-sample predictions -> day-by-day replay -> trades, equity; shuffles of the
    predictions -> permutation test; -> metrics (costs, interval, luck), charts, MLflow.

    The replay and the permutation test keep their stored results when those were computed
    from the same inputs (a daily run between two retrains); see ``planning``.
    """
    return Pipeline(
        [
            Node(
                func=plan_backtest,
                inputs={
                    "evaluation_predictions": "evaluation_predictions",
                    "prices": "prices",
                    "trading": "params:trading",
                    "backtest": "params:backtest",
                    "team": "params:team",
                    "previous_permutation": "previous_backtest_permutation",
                    "previous_trades": "previous_backtest_trades",
                    "previous_equity": "previous_backtest_equity",
                },
                outputs="backtest_plan",
                name="plan_backtest_node",
            ),
            Node(
                func=run_backtest,
                inputs={
                    "evaluation_predictions": "evaluation_predictions",
                    "prices": "prices",
                    "trading": "params:trading",
                    "backtest": "params:backtest",
                    "team": "params:team",
                    "backtest_plan": "backtest_plan",
                },
                outputs=["backtest_trades", "backtest_equity"],
                name="run_backtest_node",
            ),
            Node(
                func=permutation_test,
                inputs={
                    "evaluation_predictions": "evaluation_predictions",
                    "prices": "prices",
                    "equity": "backtest_equity",
                    "trading": "params:trading",
                    "backtest": "params:backtest",
                    "team": "params:team",
                    "backtest_plan": "backtest_plan",
                    "trades": "backtest_trades",
                },
                outputs="backtest_permutation",
                name="permutation_test_node",
            ),
            Node(
                func=summarise_backtest,
                inputs={
                    "trades": "backtest_trades",
                    "equity": "backtest_equity",
                    "permutation": "backtest_permutation",
                    "trading": "params:trading",
                    "backtest": "params:backtest",
                },
                outputs="backtest_metrics",
                name="summarise_backtest_node",
            ),
            Node(
                func=backtest_mlflow_metrics,
                inputs={"backtest_metrics": "backtest_metrics"},
                outputs="backtest_metrics_mlflow",
                name="backtest_mlflow_metrics_node",
            ),
            Node(
                func=plot_equity,
                inputs={"equity": "backtest_equity", "backtest_metrics": "backtest_metrics"},
                outputs="backtest_equity_chart",
                name="plot_equity_node",
            ),
            Node(
                func=plot_drawdown,
                inputs={"equity": "backtest_equity", "backtest_metrics": "backtest_metrics"},
                outputs="backtest_drawdown_chart",
                name="plot_drawdown_node",
            ),
            Node(
                func=plot_backtest_report,
                inputs={"equity": "backtest_equity", "backtest_metrics": "backtest_metrics"},
                outputs="backtest_report",
                name="plot_backtest_report_node",
            ),
            Node(
                func=equity_plot_table,
                inputs={"equity": "backtest_equity"},
                outputs="backtest_equity_plot",
                name="equity_plot_table_node",
            ),
        ],
        inputs={
            "evaluation_predictions",
            "prices",
            "previous_backtest_permutation",
            "previous_backtest_trades",
            "previous_backtest_equity",
        },
        outputs={
            "backtest_trades",
            "backtest_equity",
            "backtest_permutation",
            "backtest_metrics",
            "backtest_metrics_mlflow",
            "backtest_equity_chart",
            "backtest_drawdown_chart",
            "backtest_report",
            "backtest_equity_plot",
        },
        parameters={"params:trading", "params:backtest", "params:team"},
        namespace="backtest",
    )
