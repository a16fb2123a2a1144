"""Client helpers shared by adapters of one external service (sources and brokers alike)."""
