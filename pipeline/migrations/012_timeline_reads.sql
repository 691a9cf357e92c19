-- The period over which each live account's timeline has been read to its end: a post the platform
-- did not return in that period was not written, so an account silent there is evidence of absence
-- (a configured account without posts is otherwise not observed at all). read_from NULL: from the
-- start of what the platform serves. Written by pipeline/sync.py after a complete read; the estimation
-- reads it (pipeline/estimation.py org_observation).
create table timeline_reads (
    source        varchar not null,     -- the live kind: x, mastodon, bluesky, reddit
    platform      varchar not null,
    handle_key    varchar not null,
    read_from     timestamp,
    read_through  timestamp not null,
    run_id        integer,
    primary key (source, platform, handle_key)
);
