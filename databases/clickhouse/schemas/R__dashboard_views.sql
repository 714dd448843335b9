-- What dashboards query: the rollups with their aggregates finished, so a dashboard never
-- needs -Merge functions and never scans raw events. Re-applied whenever this file changes,
-- after every versioned file; CREATE OR REPLACE swaps each view in one step.
--
-- Normal views run with the rights of whoever queries them (SQL SECURITY INVOKER, the default
-- for views): a reader needs SELECT on the view and on the rollup it reads. users.d/allixios.xml
-- grants allixios_app and allixios_readonly SELECT on allixios.*, which covers both.
--
-- A filter on a grouping column (a date range, an article) is pushed into the view's query, so
-- it prunes the rollup's partitions and key ranges before grouping.

-- Views and unique visitors per article per day. The unique visitors of several days are not
-- the sum of these daily figures (a visitor who came back is one visitor): for a period, use
-- article_views_period below.
CREATE OR REPLACE VIEW allixios.article_views_daily AS
SELECT
    event_date,
    article_id,
    sum(views) AS views,
    uniqMerge(visitors) AS unique_visitors
FROM allixios.article_views_daily_agg
GROUP BY event_date, article_id;

-- Views and unique visitors per article over a period, both days included:
--   SELECT * FROM allixios.article_views_period(first_day = '2026-11-01', last_day = '2026-11-30')
-- A parameterized view, because the period must filter the rollup before its visitor sets are
-- merged: a WHERE on a view that had already grouped by article could no longer reach them.
CREATE OR REPLACE VIEW allixios.article_views_period AS
SELECT
    article_id,
    sum(views) AS views,
    uniqMerge(visitors) AS unique_visitors
FROM allixios.article_views_daily_agg
WHERE event_date BETWEEN {first_day:Date} AND {last_day:Date}
GROUP BY article_id;

-- Unique visitors per category over a period, both days included:
--   SELECT * FROM allixios.category_visitors_period(first_day = '2026-11-01', last_day = '2026-11-07')
-- Parameterized for the reason given at article_views_period.
CREATE OR REPLACE VIEW allixios.category_visitors_period AS
SELECT
    category_id,
    uniqCombinedMerge(visitors) AS unique_visitors
FROM allixios.category_visitors_daily_agg
WHERE event_date BETWEEN {first_day:Date} AND {last_day:Date}
GROUP BY category_id;

-- Requests, errors and latency quantiles per endpoint per hour.
CREATE OR REPLACE VIEW allixios.endpoint_latency_hourly AS
SELECT
    hour,
    endpoint,
    method,
    sum(requests) AS requests,
    sum(errors) AS errors,
    quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(duration_ms) AS quantiles,
    quantiles[1] AS p50_ms,
    quantiles[2] AS p90_ms,
    quantiles[3] AS p95_ms,
    quantiles[4] AS p99_ms
FROM allixios.endpoint_latency_hourly_agg
GROUP BY hour, endpoint, method;

-- Revenue and conversions per source, currency and day; campaigns and conversion types added up.
CREATE OR REPLACE VIEW allixios.revenue_daily AS
SELECT
    event_date,
    source,
    currency,
    sum(amount) AS revenue,
    sum(conversions) AS conversions
FROM allixios.revenue_daily_agg
GROUP BY event_date, source, currency;
