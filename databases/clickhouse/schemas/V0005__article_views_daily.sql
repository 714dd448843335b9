-- Page views and unique visitors per article per day, kept up to date by a materialized view
-- on user_events. Dashboards read it through the view allixios.article_views_daily
-- (R__dashboard_views.sql), never user_events.

-- The rollup. Each insert into user_events adds one row per (day, article) of the inserted
-- block; background merges combine rows of the same key. AggregatingMergeTree rather than
-- SummingMergeTree because unique visitors cannot be summed: a visitor who came on Monday and
-- Tuesday is one visitor of the week. uniq's state is a set of visitor hashes (up to 65,536,
-- then an adaptive sample: small counts are exact in practice, large ones estimated) that merges
-- into the visitors of the union across rows, days and articles.
CREATE TABLE IF NOT EXISTS allixios.article_views_daily_agg
(
    event_date Date,
    article_id UUID,
    -- A plain number that merges by addition, readable with sum() without a -Merge function.
    views      SimpleAggregateFunction(sum, UInt64),
    visitors   AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
-- The rows a merge combines are those with equal sorting keys, so the key is exactly the
-- view's GROUP BY. Day first: "top articles of the last N days" reads a contiguous range.
ORDER BY (event_date, article_id)
-- Five years of daily history, far beyond the 13 months of raw events it summarises.
TTL event_date + INTERVAL 5 YEAR
SETTINGS ttl_only_drop_parts = 1;

-- Created after its target (TO needs the table) and without POPULATE: it sees only events
-- inserted after it exists. On a fresh database that is every event; a backfill of older
-- events is a separate migration (INSERT INTO ... SELECT), which is not idempotent.
--
-- A visitor is the signed-in user when there is one, the browser otherwise.
CREATE MATERIALIZED VIEW IF NOT EXISTS allixios.article_views_daily_mv
TO allixios.article_views_daily_agg
AS SELECT
    event_date,
    article_id,
    count() AS views,
    uniqState(if(user_id = toUUID('00000000-0000-0000-0000-000000000000'), anonymous_id, user_id)) AS visitors
FROM allixios.user_events
WHERE event_type = 'page_view'
  AND article_id != toUUID('00000000-0000-0000-0000-000000000000')
GROUP BY event_date, article_id;
