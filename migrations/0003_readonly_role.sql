-- The API's role: SELECT only. Created without a password; an operator sets one with
--   ALTER ROLE healthd_readonly PASSWORD '...';
-- Roles are cluster-wide, so a second database (or a concurrent migrate in another
-- database) may have created it already.
DO $$
BEGIN
    CREATE ROLE healthd_readonly LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

GRANT USAGE ON SCHEMA public TO healthd_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO healthd_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO healthd_readonly;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO healthd_readonly', current_database());
END $$;
