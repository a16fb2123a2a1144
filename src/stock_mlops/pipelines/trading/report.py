"""The account report: what the broker holds and what the rule did, as a table and a page.

Pure functions over the broker's own snapshot (cash, buying power, positions, recent orders), the
orders log and the prediction log. The table (``account_report``) is long: one row per item, the
kind of item in ``section``:

- ``account``: ``cash, buying_power, positions_value, equity`` as of the run's date;
- ``position``: ``symbol, qty, avg_price, price`` (the broker's mark), ``market_value,
  unrealized_pl``;
- ``fill``: the last five sessions' fills: ``date, symbol, side, qty, price, fee,
  client_order_id``;
- ``open_order``: orders the broker still works (``status``);
- ``decision``: one plain sentence per decision day (``date, text``): what was ordered and what
  became of it, or why nothing was.

Columns absent for a section are empty. The page (``account_report_html``) shows the same, is
self-contained (inline CSS, no script, nothing fetched) and opens with a double click.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import OPEN_STATES, AccountSnapshot, OrderReport
from stock_mlops.core.calendar import NEW_YORK
from stock_mlops.core.params import TradingParams

REPORT_COLUMNS = [
    "section",
    "date",
    C.SYMBOL,
    "side",
    "qty",
    "avg_price",
    "price",
    "market_value",
    "unrealized_pl",
    "fee",
    "cash",
    "buying_power",
    "positions_value",
    "equity",
    "client_order_id",
    "status",
    "text",
    "broker",
    "team",
    "as_of",
]
FILL_SESSIONS = 5
DECISION_DAYS = 10
_OUTCOME_EVENTS = ("submitted", "accepted", "rejected", "partially_filled", "filled", "canceled")


def _day(value: Any) -> dt.date | None:
    """A broker time stamp (a date, or an ISO time in UTC) as the New York trading date."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    moment = pd.Timestamp(value)
    if moment.tzinfo is not None:
        moment = moment.tz_convert(NEW_YORK)
    return moment.date()


def recent_fills(account: AccountSnapshot, sessions: int = FILL_SESSIONS) -> list[OrderReport]:
    """The account's orders that filled (in part or whole) in its last ``sessions`` sessions."""
    as_of = account.as_of or account.clock.timestamp.date()
    window = calendar.sessions_between(
        pd.Timestamp(as_of) - pd.Timedelta(days=3 * sessions + 10), pd.Timestamp(as_of)
    )
    first = window[-sessions].date() if len(window) >= sessions else dt.date.min
    fills = [
        r
        for r in account.orders
        if (r.filled_qty or 0) > 0 and (day := _day(r.filled_at)) is not None and day >= first
    ]
    return sorted(fills, key=lambda r: (str(_day(r.filled_at)), r.client_order_id))


def decision_sentence(
    day: pd.Timestamp,
    log: pd.DataFrame,
    predictions: pd.DataFrame,
    params: TradingParams,
) -> str:
    """One plain sentence about one decision day.

    Args:
        day: The decision date.
        log: The team's ``orders`` log (decisions and status events).
        predictions: The team's prediction rows made from ``day``'s closes.
        params: ``params:trading`` (the threshold the sentence compares with).

    Returns:
        What was ordered and what became of it, or why nothing was.
    """
    decided = log[(log["event"] == "decided") & (log["decision_date"] == day)]
    approved = decided[decided["status"] == "approved"]
    if len(approved):
        parts = [
            f"{row.side} {row.qty:g} {row.symbol} (predicted {row.predicted_return:+.2%}): "
            f"{_outcome(row.client_order_id, log)}"
            for row in approved.itertuples()
        ]
        return "ordered " + "; ".join(parts)
    refused = decided[decided["status"] == "refused"]
    if len(refused):
        reasons = "; ".join(
            f"{r.side} {r.symbol} refused ({r.reason})" for r in refused.itertuples()
        )
        return f"no order: {reasons}"
    skipped = decided[decided["status"] == "skipped"]
    usable = predictions[pd.to_numeric(predictions["predicted_return"], errors="coerce").notna()]
    if usable.empty:
        why = "; ".join(f"{r.symbol}: {r.reason}" for r in skipped.itertuples())
        return f"no order: no usable prediction from the {day.date()} closes" + (
            f" ({why})" if why else ""
        )
    return _why_nothing(usable, params)


def _why_nothing(usable: pd.DataFrame, params: TradingParams) -> str:
    """Why usable predictions led to no order."""
    best = usable.loc[usable["predicted_return"].astype(float).idxmax()]
    value = float(best["predicted_return"])
    if params.mode == "classification":
        ups = usable[usable["predicted_direction"] == C.UP]
        if ups.empty:
            return "no order: no symbol was predicted to go up"
        return f"no order: {', '.join(ups[C.SYMBOL])} predicted up, nothing to change"
    if value <= params.threshold:
        return (
            f"no order: the largest predicted return, {value:.2%} on {best[C.SYMBOL]}, is below "
            f"the {params.threshold:.2%} threshold"
        )
    return (
        f"no order: the best prediction, {value:+.2%} on {best[C.SYMBOL]}, needed no trade "
        "(already held, or sized to nothing)"
    )


def _outcome(client_order_id: str, log: pd.DataFrame) -> str:
    events = log[(log["client_order_id"] == client_order_id) & (log["event"] != "decided")]
    seen = set(events["event"])
    if "submitted" not in seen:
        return "never submitted (the run stopped between deciding and submitting)"
    final = events.set_index("event")
    for event in ("filled", "partially_filled"):
        if event in seen:
            row = final.loc[event]
            row = row.iloc[-1] if isinstance(row, pd.DataFrame) else row
            when = _day(row["event_at"])
            rest = (
                " (the rest expired)" if event == "partially_filled" and "expired" in seen else ""
            )
            return (
                f"{'filled' if event == 'filled' else 'partly filled'} {row['filled_qty']:g} at "
                f"{row['filled_avg_price']:.2f} on {when}{rest}"
            )
    for event in ("rejected", "canceled", "expired"):
        if event in seen:
            row = final.loc[event]
            row = row.iloc[-1] if isinstance(row, pd.DataFrame) else row
            return f"{event}" + (f" ({row['reason']})" if row["reason"] else "")
    return "submitted, waiting for its fill"


def account_report_table(
    account: AccountSnapshot,
    orders_log: pd.DataFrame,
    account_history: pd.DataFrame,
    predictions: pd.DataFrame,
    params: TradingParams,
    team: str,
) -> pd.DataFrame:
    """The long report table (see the module docstring).

    Args:
        account: The broker's snapshot after this run.
        orders_log: The ``orders`` log.
        account_history: The ``account_history`` log (its dates are the trading runs' days).
        predictions: The ``predictions`` log.
        params: ``params:trading``.
        team: ``params:team``.

    Returns:
        The table, columns :data:`REPORT_COLUMNS`.
    """
    as_of = pd.Timestamp(account.as_of or account.clock.timestamp.date())
    rows: list[dict[str, Any]] = [
        {
            "section": "account",
            "date": as_of,
            "cash": account.cash,
            "buying_power": account.buying_power,
            "positions_value": account.positions_value,
            "equity": account.equity,
        }
    ]
    for symbol, p in sorted(account.positions.items()):
        rows.append(
            {
                "section": "position",
                "date": as_of,
                C.SYMBOL: symbol,
                "qty": p.qty,
                "avg_price": p.avg_price,
                "price": p.market_price,
                "market_value": p.market_value,
                "unrealized_pl": (p.market_price - p.avg_price) * p.qty,
            }
        )
    for r in recent_fills(account):
        rows.append(
            {
                "section": "fill",
                "date": pd.Timestamp(_day(r.filled_at)),
                C.SYMBOL: r.symbol,
                "side": r.side,
                "qty": r.filled_qty,
                "price": r.filled_avg_price,
                "fee": r.fee,
                "client_order_id": r.client_order_id,
                "status": r.status,
            }
        )
    for r in sorted(account.orders, key=lambda o: o.client_order_id):
        if r.status in OPEN_STATES:
            rows.append(
                {
                    "section": "open_order",
                    "date": pd.Timestamp(_day(r.submitted_at)) if r.submitted_at else pd.NaT,
                    C.SYMBOL: r.symbol,
                    "side": r.side,
                    "qty": r.qty,
                    "client_order_id": r.client_order_id,
                    "status": r.status,
                }
            )
    log = _team_log(orders_log, team)
    mine = predictions[predictions["team"] == team] if len(predictions) else predictions
    days = sorted(
        set(pd.to_datetime(account_history["date"]))
        | set(log.loc[log["event"] == "decided", "decision_date"])
        | {as_of},
        reverse=True,
    )[:DECISION_DAYS]
    for day in days:
        todays = mine[pd.to_datetime(mine["feature_date"]) == day] if len(mine) else mine
        rows.append(
            {
                "section": "decision",
                "date": day,
                "text": decision_sentence(day, log, todays, params),
            }
        )
    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    table["broker"], table["team"], table["as_of"] = account.broker, team, as_of
    return table


def _team_log(orders_log: pd.DataFrame, team: str) -> pd.DataFrame:
    if orders_log is None or orders_log.empty:
        return pd.DataFrame(
            columns=["client_order_id", "event", "status", "decision_date", "team", "reason"]
        ).astype({"decision_date": "datetime64[ns]"})
    log = orders_log[orders_log["team"] == team].copy()
    if "event" not in log:
        log["event"] = "decided"
    # Rows logged before the status history existed are decisions.
    log["event"] = log["event"].fillna("decided")
    log["decision_date"] = pd.to_datetime(log["decision_date"])
    return log


# ------------------------------------------------------------------------------------ page
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto;
       max-width: 1200px; color: #1d2330; background: #fafbfc; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #5b6475; margin-top: 0; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 18px;
        min-width: 180px; }
.card .label { color: #5b6475; font-size: 13px; } .card .value { font-size: 20px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
th, td { border-bottom: 1px solid #e4e7ed; padding: 6px 10px; text-align: left; }
th { background: #f0f2f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.neg { color: #b42318; } .pos { color: #067647; }
.empty { color: #5b6475; font-style: italic; }
li { margin: 4px 0; }
"""


def _money(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.2f}"


def _signed(value: float) -> str:
    css = "neg" if value < 0 else "pos" if value > 0 else ""
    return f'<td class="num {css}">{value:+,.2f}</td>'


def _table(headers: list[str], body: list[str], empty: str, table_id: str) -> str:
    if not body:
        return f'<p class="empty" id="{table_id}">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join(body)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def account_report_page(table: pd.DataFrame) -> str:
    """The report table as a self-contained HTML page.

    Args:
        table: The output of :func:`account_report_table`.

    Returns:
        The page.
    """
    account = table[table["section"] == "account"].iloc[0]
    team, broker, as_of = (html.escape(str(account[k])) for k in ("team", "broker", "as_of"))
    as_of = as_of[:10]
    cards = "".join(
        f'<div class="card"><div class="label">{label}</div>'
        f'<div class="value">{_money(account[key])}</div></div>'
        for label, key in (
            ("Cash", "cash"),
            ("Buying power", "buying_power"),
            ("Positions", "positions_value"),
            ("Equity", "equity"),
        )
    )
    positions = [
        f"<tr><td>{html.escape(r.symbol)}</td><td class='num'>{r.qty:g}</td>"
        f"<td class='num'>{_money(r.avg_price)}</td><td class='num'>{_money(r.price)}</td>"
        f"<td class='num'>{_money(r.market_value)}</td>{_signed(r.unrealized_pl)}</tr>"
        for r in table[table["section"] == "position"].itertuples()
    ]
    fills = [
        f"<tr><td>{pd.Timestamp(r.date).date()}</td><td>{html.escape(r.symbol)}</td>"
        f"<td>{html.escape(r.side)}</td><td class='num'>{r.qty:g}</td>"
        f"<td class='num'>{_money(r.price)}</td><td class='num'>{_money(r.fee)}</td>"
        f"<td>{html.escape(r.client_order_id)}</td></tr>"
        for r in table[table["section"] == "fill"].itertuples()
    ]
    open_orders = [
        f"<tr><td>{'' if pd.isna(r.date) else pd.Timestamp(r.date).date()}</td>"
        f"<td>{html.escape(r.symbol)}</td><td>{html.escape(r.side)}</td>"
        f"<td class='num'>{r.qty:g}</td><td>{html.escape(r.status)}</td>"
        f"<td>{html.escape(r.client_order_id)}</td></tr>"
        for r in table[table["section"] == "open_order"].itertuples()
    ]
    decisions = "".join(
        f"<li><strong>{pd.Timestamp(r.date).date()}</strong>: {html.escape(r.text)}</li>"
        for r in table[table["section"] == "decision"].itertuples()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Account report: team {team}, {as_of}</title>
<style>{_CSS}</style></head>
<body>
<h1 id="title">Account report: team {team}</h1>
<p class="sub">{broker} broker, as of the close of {as_of}; figures from the broker itself</p>
<div class="cards" id="summary">{cards}</div>
<h2>Positions</h2>
{
        _table(
            ["Symbol", "Qty", "Avg price", "Price", "Market value", "Unrealised P&L"],
            positions,
            "No open position: the account holds only cash.",
            "positions",
        )
    }
<h2>Fills of the last {FILL_SESSIONS} sessions</h2>
{
        _table(
            ["Date", "Symbol", "Side", "Qty", "Price", "Fee", "Client order id"],
            fills,
            f"No fill in the last {FILL_SESSIONS} sessions.",
            "fills",
        )
    }
<h2>Open orders</h2>
{
        _table(
            ["Submitted", "Symbol", "Side", "Qty", "Status", "Client order id"],
            open_orders,
            "No order is waiting at the broker.",
            "open-orders",
        )
    }
<h2>Decisions</h2>
<ul id="decisions">{decisions}</ul>
</body></html>
"""
