-- The features table without its primary key. Its index made every build pay for every stored row:
-- at 1M posts / 5,000 organisations, storing the 1.5M rows of a new as_of (windows 0, 30, 90) took
-- 22 s with the index and 3.7 s without, and the index grows with the history kept (one set of rows
-- per as_of) and must fit in memory. The feature runner is the one writer: it deletes the rows of the
-- (as_of, window) it replaces and inserts its own in one transaction (features/runner.py
-- _replace_window), so a key is never stored twice.
create table features_unindexed (
    as_of           timestamp not null,
    window_days     integer not null,    -- 0 = all data up to as_of
    scope           varchar not null,    -- account | org
    org_id          varchar not null,    -- '' for unassigned accounts
    platform        varchar not null,    -- '' at org scope
    account         varchar not null,    -- '' at org scope
    feature         varchar not null,
    value           double,
    evidence        bigint,              -- how many observations the value rests on
    computed_at     timestamp not null
);
insert into features_unindexed select * from features order by as_of, window_days;
drop table features;
alter table features_unindexed rename to features;
