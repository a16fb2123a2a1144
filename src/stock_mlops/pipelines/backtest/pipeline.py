"""Wiring of the backtest pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.backtest.nodes import (
    plot_drawdown,
    plot_equity,
    run_backtest,
    summarise_backtest,
)


def create_pipeline(**kwargs) -> Pipeline:
    """out-of-sample predictions -> day-by-day replay -> trades, equity, metrics, charts."""
    return Pipeline(
        [
            Node(
                func=run_backtest,
                inputs=[
                    "evaluation_predictions",
                    "prices",
                    "params:trading",
                    "params:training",
                    "params:backtest",
                    "params:team",
                ],
                outputs=["backtest_trades", "backtest_equity"],
                name="run_backtest_node",
            ),
            Node(
                func=summarise_backtest,
                inputs=["backtest_trades", "backtest_equity"],
                outputs="backtest_metrics",
                name="summarise_backtest_node",
            ),
            Node(
                func=plot_equity,
                inputs="backtest_equity",
                outputs="backtest_equity_chart",
                name="plot_equity_node",
            ),
            Node(
                func=plot_drawdown,
                inputs="backtest_equity",
                outputs="backtest_drawdown_chart",
                name="plot_drawdown_node",
            ),
        ]
    )
