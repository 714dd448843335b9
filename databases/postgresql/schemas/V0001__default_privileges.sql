-- Privileges that every object allixios_owner creates from here on starts with. This is the
-- first migration on purpose: a table or function added by any later migration is usable by the
-- platform and the reports without a GRANT someone has to remember, and never more than that.
-- V0006__table_privileges.sql then narrows the tables that need less than the default.

-- The platform reads and writes rows; row-level security decides which. Never TRUNCATE (it
-- skips RLS and row triggers), REFERENCES or TRIGGER, and no DDL (it has no CREATE on public).
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO allixios_app;
-- Reporting reads; default_transaction_read_only (initdb/10-roles.sh) is the second lock.
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  GRANT SELECT ON TABLES TO allixios_readonly;
-- The schema uses uuid keys, but a later identity column must not need its own grant.
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO allixios_app;
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  GRANT SELECT ON SEQUENCES TO allixios_readonly;

-- PostgreSQL lets PUBLIC execute every new function. Only the platform's roles may here: the
-- built-in default is revoked globally (a per-schema default can only add), then granted back
-- to the two roles in public.
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner
  REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  GRANT EXECUTE ON FUNCTIONS TO allixios_app, allixios_readonly;
