-- The facts carry what a feature reads about a whole thread: an organisation post its depth (longest
-- reply chain, root = 1), a mention its distinct non-organisation authors, every thread post the time
-- of the thread's newest post. A build for an as_of at or after that time (the nightly one, nearly
-- always) reads them as stored; only threads still growing after as_of are counted again from their
-- posts up to as_of (features/sql/05_staging_signals.sql).
-- Aggregating every thread at every build cost more than the rest of the signal staging at 10M posts.
-- features/facts.py fills the columns: its changed derivation derives every fact again on the first
-- refresh after this migration.
alter table fact_thread_posts add column thread_last_at timestamp;
alter table fact_mentions add column thread_customers bigint;
alter table fact_org_posts add column thread_depth integer;
