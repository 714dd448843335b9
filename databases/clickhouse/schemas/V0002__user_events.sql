-- Raw user events: page views, clicks and other interactions, one row per event, written by the
-- platform (allixios_app) in small batches (async_insert, see users.d/allixios.xml).
--
-- Dashboards never read this table: the materialized views of V0005 keep their rollups up to
-- date as events arrive. It is kept for ad-hoc analysis and to rebuild a rollup.
--
-- Identifiers are UUIDs, as in PostgreSQL. A missing one is the nil UUID rather than NULL:
-- Nullable columns carry a second column of null flags and slow every filter on them, and the
-- nil UUID is what JSONEachRow stores for an omitted field or a null (input_format_null_as_default).
CREATE TABLE IF NOT EXISTS allixios.user_events
(
    -- Milliseconds, in UTC whatever the server's or the client's time zone. Delta stores the gaps
    -- between neighbouring times, which are small within the sorting key's runs, and ZSTD packs
    -- them; DoubleDelta pays only for regular intervals, which user events are not.
    event_time   DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    -- The partition and TTL key, computed by the server so that no writer can disagree with
    -- event_time: not part of SELECT *, and a value sent for it is ignored.
    event_date   Date MATERIALIZED toDate(event_time),
    -- page_view, click, share, ...: a handful of values, so a dictionary (LowCardinality) stores
    -- each row as a small number. A String, not an Enum8: a new event type needs no migration.
    event_type   LowCardinality(String),
    -- The signed-in user, nil for anonymous visitors.
    user_id      UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    -- The browser's first-party cookie id: present for every visitor, signed in or not.
    anonymous_id UUID,
    session_id   UUID,
    -- Nil for events outside an article (home page, search).
    article_id   UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    category_id  UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    -- Full URLs repeat a lot (same sites, same paths) and compress far better with ZSTD than with
    -- the default LZ4. Random UUIDs above are left to LZ4: no codec shrinks random bytes.
    referrer     String DEFAULT '' CODEC(ZSTD(3)),
    -- desktop, mobile, tablet, bot; '' when unknown.
    device       LowCardinality(String) DEFAULT '',
    -- ISO 3166-1 alpha-2, '' when unknown. A String rather than FixedString(2): an unknown
    -- country would read back as two NUL bytes.
    country      LowCardinality(String) DEFAULT '',
    -- Whatever else an event type carries (button id, scroll depth, ...), as text.
    properties   Map(LowCardinality(String), String) CODEC(ZSTD(1)),

    -- Refused at insert time, before a typo becomes a new event type on every dashboard.
    CONSTRAINT event_type_format CHECK match(event_type, '^[a-z][a-z0-9_]{0,39}$'),
    CONSTRAINT country_format CHECK country = '' OR match(country, '^[A-Z]{2}$')
)
ENGINE = MergeTree
-- Monthly: a few dozen partitions over the retention, each dropped whole when it expires.
PARTITION BY toYYYYMM(event_date)
-- Ad-hoc questions are "events of this type for this article over this period": the key answers
-- them with one range per (type, article), and the few event types first keep similar rows
-- together. The period itself is pruned by the partition.
ORDER BY (event_type, article_id, event_time)
-- 13 months: the same month of the previous year stays comparable. Older questions are
-- answered by the rollups, which live longer.
TTL event_date + INTERVAL 13 MONTH
-- Expired data goes a whole part at a time (a month ends up in its own parts) instead of
-- rewriting parts row by row: retention is by month, at most one month longer than the TTL.
SETTINGS ttl_only_drop_parts = 1;
