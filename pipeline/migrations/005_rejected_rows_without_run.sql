-- Records set aside by a live sync run without an ingest run (a connector used directly, e.g. from a
-- notebook) are still recorded.
alter table rejected_rows alter column run_id drop not null;
