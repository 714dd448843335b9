-- One row per API request the platform served: latency and errors per endpoint. Dashboards read
-- the hourly rollup of V0006.
CREATE TABLE IF NOT EXISTS allixios.performance_metrics
(
    -- See user_events: gaps between neighbouring times are small within an endpoint's run.
    event_time    DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_date    Date MATERIALIZED toDate(event_time),
    -- The route template (/api/articles/:id), never the raw path: raw paths would make every
    -- article its own endpoint and the rollup as large as this table.
    endpoint      LowCardinality(String),
    method        LowCardinality(String),
    status        UInt16,
    -- Whole milliseconds fit in far fewer than 32 bits: T64 drops the unused high bits and ZSTD
    -- packs the rest.
    duration_ms   UInt32 CODEC(T64, ZSTD(1)),
    -- A server error unless the platform says otherwise (a 200 whose downstream call failed).
    is_error      Bool DEFAULT status >= 500,
    error_message String DEFAULT '' CODEC(ZSTD(3)),
    -- The pod or host that served the request, to tell one bad instance from a bad endpoint.
    instance      LowCardinality(String) DEFAULT '',

    CONSTRAINT status_is_http CHECK status BETWEEN 100 AND 599,
    CONSTRAINT method_format CHECK match(method, '^[A-Z]+$')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_date)
-- "How did this endpoint behave over this period": one range per endpoint and method.
ORDER BY (endpoint, method, event_time)
-- Raw requests matter while an incident is investigated; trends live in the rollup.
TTL event_date + INTERVAL 90 DAY
-- Whole parts: with monthly partitions, a request is kept 90 to about 120 days.
SETTINGS ttl_only_drop_parts = 1;
