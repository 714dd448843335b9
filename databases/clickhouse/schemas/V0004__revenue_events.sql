-- Revenue and conversions: subscriptions, purchases, affiliate and ad revenue, each with the
-- marketing source it is attributed to. The billing system stays the record of money; this is
-- its analytical copy. Dashboards read the daily rollup of V0007.
CREATE TABLE IF NOT EXISTS allixios.revenue_events
(
    event_time        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_date        Date MATERIALIZED toDate(event_time),
    -- The platform's id of the conversion: how a duplicate sent twice is found and how a row is
    -- traced back to the billing system.
    event_id          UUID,
    user_id           UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    -- The article that led to the conversion, nil when none did.
    article_id        UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    -- Marketing source and campaign (utm_source, utm_campaign); 'direct' when there was none.
    source            LowCardinality(String),
    campaign          LowCardinality(String) DEFAULT '',
    -- subscription, purchase, affiliate, ad, refund, ...
    conversion_type   LowCardinality(String),
    -- Exact decimal money, never a float: four decimal places cover sub-cent ad revenue. A refund
    -- is a negative amount, so sums are net.
    amount            Decimal(18, 4),
    -- ISO 4217. Amounts of different currencies are never added up: every rollup keeps the
    -- currency in its key.
    currency          LowCardinality(FixedString(3)),
    -- How the conversion was credited to `source` (last_click, first_click, linear, ...), and the
    -- touchpoints the model weighed, oldest first.
    attribution_model LowCardinality(String) DEFAULT 'last_click',
    touchpoints       Array(Tuple(source LowCardinality(String), campaign String, touched_at DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),

    CONSTRAINT currency_format CHECK match(toString(currency), '^[A-Z]{3}$'),
    CONSTRAINT source_present CHECK source != ''
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_date)
-- Finance questions are "this source (and campaign) over this period".
ORDER BY (source, campaign, event_time)
-- Seven years, a common retention period for accounting records. The billing system keeps the
-- records of money; this only bounds how far back the analytical copy reaches.
TTL event_date + INTERVAL 7 YEAR
SETTINGS ttl_only_drop_parts = 1;
