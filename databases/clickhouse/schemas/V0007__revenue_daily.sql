-- Revenue and conversions per source per day, kept up to date by a materialized view on
-- revenue_events. Dashboards read allixios.revenue_daily (R__dashboard_views.sql).

-- Everything here adds up, so SummingMergeTree: merges add the listed columns of rows with the
-- same key, and the values stay plain numbers. Decimal addition is exact.
CREATE TABLE IF NOT EXISTS allixios.revenue_daily_agg
(
    event_date      Date,
    source          LowCardinality(String),
    campaign        LowCardinality(String),
    conversion_type LowCardinality(String),
    -- Never summed across currencies: the currency is part of the key.
    currency        LowCardinality(FixedString(3)),
    -- 38 digits: sums of Decimal(18, 4) amounts cannot overflow it.
    amount          Decimal(38, 4),
    -- Also what keeps a row alive: SummingMergeTree drops a row whose summed columns are all
    -- zero, and a day whose refunds cancel its sales still has conversions.
    conversions     UInt64
)
ENGINE = SummingMergeTree((amount, conversions))
PARTITION BY toYYYYMM(event_date)
-- The view's GROUP BY, day first for "revenue of the last N days by source".
ORDER BY (event_date, source, campaign, conversion_type, currency)
-- Ten years of daily totals against seven of individual events.
TTL event_date + INTERVAL 10 YEAR
SETTINGS ttl_only_drop_parts = 1;

-- After its target, without POPULATE (see V0005).
CREATE MATERIALIZED VIEW IF NOT EXISTS allixios.revenue_daily_mv
TO allixios.revenue_daily_agg
AS SELECT
    event_date,
    source,
    campaign,
    conversion_type,
    currency,
    sum(amount) AS amount,
    count() AS conversions
FROM allixios.revenue_events
GROUP BY event_date, source, campaign, conversion_type, currency;
