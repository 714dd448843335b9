-- Requests, errors and response-time quantiles per endpoint per hour, kept up to date by a
-- materialized view on performance_metrics. Dashboards read allixios.endpoint_latency_hourly
-- (R__dashboard_views.sql).

-- Quantiles cannot be added up or averaged: the rollup keeps a t-digest per row, a compact
-- sketch of the distribution that merges across rows into the sketch of the union, so "p95 of
-- the last 24 hours" is computed from 24 sketches, not from raw requests. T-digests are most
-- precise at the tails, where latency dashboards look (p95, p99); the result is approximate and
-- may differ slightly with the order of merges. The plain quantiles() keeps a reservoir of up to
-- 8,192 raw values per row instead: 32 KB per endpoint and hour, and a sample once an hour has
-- more requests.
CREATE TABLE IF NOT EXISTS allixios.endpoint_latency_hourly_agg
(
    hour         DateTime('UTC'),
    endpoint     LowCardinality(String),
    method       LowCardinality(String),
    requests     SimpleAggregateFunction(sum, UInt64),
    errors       SimpleAggregateFunction(sum, UInt64),
    -- The levels are part of the type: a dashboard reads exactly these four.
    duration_ms  AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
-- The view's GROUP BY. Endpoint first: "this endpoint over the last day" reads one range; the
-- whole table is small enough that "slowest endpoints this hour" scans it cheaply.
ORDER BY (endpoint, method, hour)
-- 13 months of hourly trends against 90 days of raw requests.
TTL toDate(hour) + INTERVAL 13 MONTH
SETTINGS ttl_only_drop_parts = 1;

-- After its target, without POPULATE (see V0005).
CREATE MATERIALIZED VIEW IF NOT EXISTS allixios.endpoint_latency_hourly_mv
TO allixios.endpoint_latency_hourly_agg
AS SELECT
    toStartOfHour(event_time) AS hour,
    endpoint,
    method,
    count() AS requests,
    countIf(is_error) AS errors,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS duration_ms
FROM allixios.performance_metrics
GROUP BY hour, endpoint, method;
