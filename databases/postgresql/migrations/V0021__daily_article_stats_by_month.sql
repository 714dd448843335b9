-- daily_article_stats, the largest time-series table, range-partitioned by month on `day`.
--
-- Why: the table grows by a row per article and day for ever. By month, old statistics leave
-- with a DROP of their partition (no DELETE, no bloat, no vacuum), and the platform's reads of a
-- period (an author's report: a range of days) scan only the months of that period.
--
-- Layout (databases/postgresql/README.md, "Partitioning"):
--   daily_article_stats                    the partitioned table: columns, keys, checks, foreign
--                                          key, trigger, RLS and grants, all as before
--   daily_article_stats_y<YYYY>m<MM>       one partition per month, [1st of the month, 1st of next)
--   daily_article_stats_default            the DEFAULT partition: a day no month partition takes
--                                          (a backfill of a month not created yet, a date far
--                                          ahead) is stored there, so an insert never fails
-- maintain_daily_article_stats_partitions(), run on a schedule, creates the months ahead, moves
-- rows that landed in DEFAULT into their month when it creates it, and drops the months past
-- the retention the stack config sets.
--
-- What the conversion does, in this one transaction: rename the old table, create the
-- partitioned one and its partitions (every month the old rows have, and the current month and
-- three ahead), copy every row, add what depended on the old table (foreign key, trigger, RLS
-- and its policies, grants, comments), drop the old table. The primary key (article_id, day)
-- already contains the partition key, as a partitioned table's unique keys must.
--
-- Cost: the rename takes an ACCESS EXCLUSIVE lock on daily_article_stats, held until the commit:
-- every read and write of statistics waits for the whole copy (15 to 20 s for 1.5 million rows
-- on 2 cores: databases/postgresql/README.md, "Partitioning"); from the foreign key on, writes to
-- articles wait too (SHARE ROW EXCLUSIVE, reads go on). Nothing else is locked. The bootstrap's short lock timeout with
-- retries keeps the wait for the lock itself from queueing the platform behind a long read.

------------------------------------------------------------------------------------------------
-- Creating a month's partition
------------------------------------------------------------------------------------------------
-- A month's partition is built as a table of its own and then attached: ATTACH PARTITION takes
-- only SHARE UPDATE EXCLUSIVE on the partitioned table (reads and writes go on), where CREATE
-- TABLE ... PARTITION OF would take ACCESS EXCLUSIVE. Rows of the month already in DEFAULT move
-- into it first (PostgreSQL refuses a partition whose range has rows in DEFAULT); a CHECK of the
-- range lets ATTACH skip scanning them, and goes once attached. Its primary key becomes a
-- partition of the parent's; the foreign key, the checks and the trigger come with ATTACH.
-- A partition is reached through daily_article_stats only: no platform role has a privilege on
-- it (the default privileges of V0001 are revoked), and its own RLS, enabled and forced, lets
-- only the owner in, as on every table. Returns the rows moved from DEFAULT, NULL when the
-- partition already exists.
CREATE FUNCTION daily_article_stats_add_partition(month date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  lower_bound constant date := date_trunc('month', month)::date;
  upper_bound constant date := (date_trunc('month', month) + interval '1 month')::date;
  partition_name constant text := 'daily_article_stats_' || to_char(lower_bound, '"y"YYYY"m"MM');
  moved bigint := 0;
BEGIN
  IF to_regclass('public.' || quote_ident(partition_name)) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('CREATE TABLE public.%I (LIKE public.daily_article_stats INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name);
  EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I CHECK (day >= %L AND day < %L)', partition_name, partition_name || '_range', lower_bound, upper_bound);
  IF to_regclass('public.daily_article_stats_default') IS NOT NULL THEN
    EXECUTE format(
      'WITH moved AS (DELETE FROM public.daily_article_stats_default WHERE day >= %L AND day < %L RETURNING *) INSERT INTO public.%I SELECT * FROM moved',
      lower_bound, upper_bound, partition_name);
    GET DIAGNOSTICS moved = ROW_COUNT;
  END IF;
  EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I PRIMARY KEY (article_id, day)', partition_name, partition_name || '_pkey');
  EXECUTE format('ALTER TABLE public.daily_article_stats ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)', partition_name, lower_bound, upper_bound);
  EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', partition_name, partition_name || '_range');
  EXECUTE format('REVOKE ALL ON public.%I FROM PUBLIC, allixios_app, allixios_readonly', partition_name);
  EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', partition_name);
  EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO allixios_owner USING (true) WITH CHECK (true)', partition_name || '_owner_all', partition_name);
  EXECUTE format('COMMENT ON TABLE public.%I IS %L', partition_name,
    format('daily_article_stats of %s (month partition; maintain_daily_article_stats_partitions)', to_char(lower_bound, 'YYYY-MM')));
  EXECUTE format('COMMENT ON INDEX public.%I IS %L', partition_name || '_pkey',
    format('daily_article_stats_pkey for %s: statistics of an article by day; the upsert key', to_char(lower_bound, 'YYYY-MM')));
  RETURN moved;
END;
$$;
COMMENT ON FUNCTION daily_article_stats_add_partition(date) IS
  'creates the month partition of daily_article_stats holding the given day, moving its rows out of DEFAULT (V0021)';

------------------------------------------------------------------------------------------------
-- Maintenance, on a schedule
------------------------------------------------------------------------------------------------
-- Brings the partitions to the retention, as of a day (today unless given; never a day to come,
-- which would drop what is not yet past retention):
--   - drops every month partition that ends on or before the first of the month `retain_months`
--     before as_of's month (retain_months = 13 keeps the current month and the 13 before it),
--     and deletes the rows in DEFAULT that old;
--   - creates the partitions of as_of's month and the `months_ahead` after it, and of every
--     other month not past retention that has rows in DEFAULT, moving those rows into it.
-- Rows in DEFAULT dated beyond the months ahead stay there until their month is created.
-- Idempotent: a second run changes nothing. Two runs do not interleave: each first takes SHARE
-- UPDATE EXCLUSIVE on daily_article_stats, which conflicts with itself and with no read or write.
-- Returns one row per change: created (with the rows moved from DEFAULT), dropped, expired (rows
-- deleted from DEFAULT). Ends with ANALYZE ONLY of the partitioned table.
-- SECURITY DEFINER with a fixed search_path, so that a dedicated maintenance role could be
-- granted EXECUTE without owning the table; today only the owner (the scheduled task) may run it.
CREATE FUNCTION maintain_daily_article_stats_partitions(months_ahead integer, retain_months integer, as_of date DEFAULT current_date)
RETURNS TABLE (action text, partition_name text, month date, row_count bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  this_month date;
  cutoff date;
  horizon date;
  existing record;
  wanted date;
  moved bigint;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'maintain_daily_article_stats_partitions: months_ahead must be 0 to 36, got %', coalesce(months_ahead::text, 'NULL') USING ERRCODE = '22023';
  END IF;
  IF retain_months IS NULL OR retain_months < 1 OR retain_months > 1200 THEN
    RAISE EXCEPTION 'maintain_daily_article_stats_partitions: retain_months must be 1 to 1200, got %', coalesce(retain_months::text, 'NULL') USING ERRCODE = '22023';
  END IF;
  IF as_of IS NULL OR as_of > current_date THEN
    RAISE EXCEPTION 'maintain_daily_article_stats_partitions: as_of must be a day up to today (%), got %', current_date, coalesce(as_of::text, 'NULL') USING ERRCODE = '22023';
  END IF;
  this_month := date_trunc('month', as_of)::date;
  cutoff := (this_month - make_interval(months => retain_months))::date;
  horizon := (this_month + make_interval(months => months_ahead + 1))::date;

  LOCK TABLE public.daily_article_stats IN SHARE UPDATE EXCLUSIVE MODE;

  FOR existing IN
    SELECT c.relname AS name, bounds.lower_bound, bounds.upper_bound
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     CROSS JOIN LATERAL (
       SELECT m[1]::date AS lower_bound, m[2]::date AS upper_bound
         FROM regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \(''([0-9-]+)''\) TO \(''([0-9-]+)''\)$') AS m
     ) bounds
     WHERE i.inhparent = 'public.daily_article_stats'::regclass AND bounds.upper_bound <= cutoff
     ORDER BY bounds.lower_bound
  LOOP
    EXECUTE format('DROP TABLE public.%I', existing.name);
    action := 'dropped'; partition_name := existing.name; month := existing.lower_bound; row_count := NULL;
    RETURN NEXT;
  END LOOP;

  DELETE FROM public.daily_article_stats_default WHERE day < cutoff;
  GET DIAGNOSTICS moved = ROW_COUNT;
  IF moved > 0 THEN
    action := 'expired'; partition_name := 'daily_article_stats_default'; month := NULL; row_count := moved;
    RETURN NEXT;
  END IF;

  FOR wanted IN
    SELECT generate_series(this_month, (horizon - interval '1 month')::date, interval '1 month')::date
    UNION
    SELECT DISTINCT date_trunc('month', d.day)::date FROM public.daily_article_stats_default d WHERE d.day >= cutoff AND d.day < horizon
    ORDER BY 1
  LOOP
    moved := public.daily_article_stats_add_partition(wanted);
    IF moved IS NOT NULL THEN
      action := 'created'; partition_name := 'daily_article_stats_' || to_char(wanted, '"y"YYYY"m"MM'); month := wanted; row_count := moved;
      RETURN NEXT;
    END IF;
  END LOOP;

  -- Autovacuum analyzes the partitions but never a partitioned table, whose statistics the
  -- planner uses for joins over it (the author's report): a sample of the whole table, daily.
  ANALYZE ONLY public.daily_article_stats;
END;
$$;
COMMENT ON FUNCTION maintain_daily_article_stats_partitions(integer, integer, date) IS
  'creates the month partitions of daily_article_stats ahead, moves DEFAULT rows into them, drops months past retention; run by the scheduled task (V0021)';

-- The owner runs both (the bootstrap, the scheduled task); V0001 let the platform's roles execute
-- every new function.
REVOKE ALL ON FUNCTION daily_article_stats_add_partition(date), maintain_daily_article_stats_partitions(integer, integer, date)
  FROM PUBLIC, allixios_app, allixios_readonly;

------------------------------------------------------------------------------------------------
-- The conversion
------------------------------------------------------------------------------------------------
ALTER TABLE daily_article_stats RENAME TO daily_article_stats_unpartitioned;
ALTER INDEX daily_article_stats_pkey RENAME TO daily_article_stats_unpartitioned_pkey;

-- The columns, in the old order, with their defaults and checks; the key as before (it holds the
-- partition key, day). The NOT NULL constraints are named as before: PostgreSQL 18 would
-- otherwise number them past the old table's (..._not_null1).
CREATE TABLE daily_article_stats (
  article_id        uuid    CONSTRAINT daily_article_stats_article_id_not_null NOT NULL,
  day               date    CONSTRAINT daily_article_stats_day_not_null NOT NULL,
  views             bigint  CONSTRAINT daily_article_stats_views_not_null NOT NULL DEFAULT 0,
  unique_visitors   bigint  CONSTRAINT daily_article_stats_unique_visitors_not_null NOT NULL DEFAULT 0,
  comments          integer CONSTRAINT daily_article_stats_comments_not_null NOT NULL DEFAULT 0,
  article_author_id uuid    CONSTRAINT daily_article_stats_article_author_id_not_null NOT NULL,
  CONSTRAINT daily_article_stats_pkey PRIMARY KEY (article_id, day),
  CONSTRAINT daily_article_stats_counts_not_negative CHECK (views >= 0 AND unique_visitors >= 0 AND comments >= 0),
  CONSTRAINT daily_article_stats_visitors_within_views CHECK (unique_visitors <= views)
) PARTITION BY RANGE (day);
COMMENT ON TABLE daily_article_stats IS
  'daily roll-up written by the analytics job (one upsert per article and day), partitioned by month on day (V0021)';
COMMENT ON COLUMN daily_article_stats.article_author_id IS 'the author of the statistics'' article; kept by the system (V0019)';
COMMENT ON INDEX daily_article_stats_pkey IS
  'statistics of an article by day over a period; the upsert key of the analytics job';

CREATE TABLE daily_article_stats_default PARTITION OF daily_article_stats DEFAULT;
REVOKE ALL ON daily_article_stats_default FROM PUBLIC, allixios_app, allixios_readonly;
ALTER TABLE daily_article_stats_default ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY daily_article_stats_default_owner_all ON daily_article_stats_default FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
COMMENT ON TABLE daily_article_stats_default IS
  'daily_article_stats of days no month partition takes yet; maintain_daily_article_stats_partitions moves them out (V0021)';
COMMENT ON INDEX daily_article_stats_default_pkey IS
  'daily_article_stats_pkey for days outside the month partitions';

-- Every month the rows have, and the current one and three ahead (the scheduled task keeps
-- creating them from here on).
SELECT daily_article_stats_add_partition(month)
  FROM (SELECT DISTINCT date_trunc('month', day)::date AS month FROM daily_article_stats_unpartitioned
        UNION
        SELECT generate_series(date_trunc('month', current_date), date_trunc('month', current_date) + interval '3 months', interval '1 month')::date) months
 ORDER BY month;

INSERT INTO daily_article_stats (article_id, day, views, unique_visitors, comments, article_author_id)
SELECT article_id, day, views, unique_visitors, comments, article_author_id FROM daily_article_stats_unpartitioned;

-- What depended on the old table, added once the rows are in: the foreign key checks them in one
-- pass, and the author trigger does not look up authors the rows already carry.
ALTER TABLE daily_article_stats
  ADD CONSTRAINT daily_article_stats_article_id_fkey FOREIGN KEY (article_id) REFERENCES articles (id) ON DELETE CASCADE;
CREATE TRIGGER daily_article_stats_fill_author
  BEFORE INSERT ON daily_article_stats FOR EACH ROW EXECUTE FUNCTION daily_article_stats_fill_author();

-- Grants as V0006 and V0011 left them: the analytics job writes the counts, reporting reads.
REVOKE ALL ON daily_article_stats FROM PUBLIC, allixios_app, allixios_readonly;
GRANT SELECT ON daily_article_stats TO allixios_app, allixios_readonly;
GRANT INSERT (article_id, day, views, unique_visitors, comments),
      UPDATE (views, unique_visitors, comments)
  ON daily_article_stats TO allixios_app;

-- Row-level security and the policies as V0013 and V0019 left them.
ALTER TABLE daily_article_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_article_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY daily_article_stats_app_select ON daily_article_stats FOR SELECT TO allixios_app
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN article_author_id::text = app_policy_user_id()
    ELSE false
  END
);
CREATE POLICY daily_article_stats_app_insert ON daily_article_stats FOR INSERT TO allixios_app WITH CHECK (app_policy_role() = 'admin');
CREATE POLICY daily_article_stats_app_update ON daily_article_stats FOR UPDATE TO allixios_app
  USING (app_policy_role() = 'admin') WITH CHECK (app_policy_role() = 'admin');
CREATE POLICY daily_article_stats_owner_all ON daily_article_stats FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY daily_article_stats_readonly_select ON daily_article_stats FOR SELECT TO allixios_readonly USING (true);

DROP TABLE daily_article_stats_unpartitioned;

-- The partitioned table's own statistics (a sample of all of it; autovacuum analyzes only the
-- partitions), which the old table had.
ANALYZE ONLY daily_article_stats;
