"""Brokers: one interface (:class:`~stock_mlops.brokers.base.Broker`), a simulated local paper
broker and Alpaca's paper API. Order decisions never depend on which one is used."""
