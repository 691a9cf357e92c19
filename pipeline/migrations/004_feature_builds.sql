-- Input fingerprint of each stored feature build (features/cache.py): a rebuild whose inputs hash to
-- the same fingerprint is skipped. Kept in the database beside the features it vouches for, so a
-- replaced or deleted database can never be served a stale cache.
create table feature_builds (
    as_of           timestamp not null,
    window_days     integer not null,
    fingerprint     varchar not null,    -- sha256 of feature code, config, posts up to as_of, as_of, window
    feature_rows    bigint not null,     -- rows the build stored; fewer now means they were deleted
    built_at        timestamp not null,
    primary key (as_of, window_days)
);
