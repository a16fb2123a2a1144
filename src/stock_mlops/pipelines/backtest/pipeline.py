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
                inputs={
                    "evaluation_predictions": "evaluation_predictions",
                    "prices": "prices",
                    "trading": "params:trading",
                    "backtest": "params:backtest",
                    "team": "params:team",
                },
                outputs=["backtest_trades", "backtest_equity"],
                name="run_backtest_node",
            ),
            Node(
                func=summarise_backtest,
                inputs={"trades": "backtest_trades", "equity": "backtest_equity"},
                outputs="backtest_metrics",
                name="summarise_backtest_node",
            ),
            Node(
                func=plot_equity,
                inputs={"equity": "backtest_equity"},
                outputs="backtest_equity_chart",
                name="plot_equity_node",
            ),
            Node(
                func=plot_drawdown,
                inputs={"equity": "backtest_equity"},
                outputs="backtest_drawdown_chart",
                name="plot_drawdown_node",
            ),
        ],
        inputs={"evaluation_predictions", "prices"},
        outputs={
            "backtest_trades",
            "backtest_equity",
            "backtest_metrics",
            "backtest_equity_chart",
            "backtest_drawdown_chart",
        },
        parameters={"params:trading", "params:backtest", "params:team"},
        namespace="backtest",
    )
