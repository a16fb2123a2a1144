"""Price sources: where raw daily bars come from (I/O adapters used by the raw-price dataset).

Every source returns the bytes it received, untouched, as a :class:`RawPayload`; parsing and
validation happen in pure nodes of the ``data_ingestion`` pipeline. Add a source by implementing
:class:`PriceSource` and registering it in :func:`make_source`.
"""

from stock_mlops.sources.base import (
    ArchivedPrices,
    FetchFailure,
    PriceRequest,
    PriceSource,
    RawPayload,
    SourceError,
    make_source,
)

__all__ = [
    "ArchivedPrices",
    "FetchFailure",
    "PriceRequest",
    "PriceSource",
    "RawPayload",
    "SourceError",
    "make_source",
]
