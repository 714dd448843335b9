-- The platform's analytics database. Every later statement names it (allixios.<table>), so the
-- bootstrap's connection needs no default database: the admin connection has none, because it
-- must work before this statement has run.
--
-- Atomic, ClickHouse's default, stated so that the database does not depend on the server's
-- default_database_engine: CREATE OR REPLACE TABLE and EXCHANGE TABLES, which a later migration
-- may use to swap a table in one step, require it.
CREATE DATABASE IF NOT EXISTS allixios ENGINE = Atomic;
