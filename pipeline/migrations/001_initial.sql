-- Initial schema. Timestamps are UTC, stored as TIMESTAMP (naive UTC) for fast arithmetic.

create table organisations (
    org_id          varchar primary key,
    name            varchar not null,
    sector          varchar,             -- competitor group
    timezone        varchar not null default 'UTC',
    business_start  time not null default time '09:00',
    business_end    time not null default time '17:00'
);

-- Every account the pipeline knows: configured ones (org_id set) and org accounts discovered in
-- data (org_id null = unassigned). handle_key is the lower-cased handle used for matching.
create table accounts (
    platform        varchar not null,
    handle_key      varchar not null,
    handle          varchar not null,
    org_id          varchar,
    role            varchar,             -- department role: support, marketing, news, careers, ...
    configured      boolean not null default false,
    primary key (platform, handle_key)
);

create table ingest_runs (
    run_id          bigint primary key,
    source          varchar not null,
    kind            varchar not null,    -- twcs, x, reddit, mastodon, bluesky, synthetic, ...
    started_at      timestamp not null,
    finished_at     timestamp,
    status          varchar not null,    -- running, ok, failed
    rows_read       bigint default 0,
    rows_loaded     bigint default 0,
    rows_rejected   bigint default 0,
    message         varchar
);
create sequence ingest_run_ids start 1;

create table posts (
    platform          varchar not null,
    post_id           varchar not null,
    author            varchar not null,
    author_key        varchar not null,  -- lower(author), the matching key
    is_org_author     boolean not null,
    created_at        timestamp not null,
    in_reply_to       varchar,
    conversation_id   varchar,
    text              varchar,           -- kept for organisation authors; customers' text only on request
    mentions          varchar[],         -- lower-cased @handles in text order (derived at load)
    is_question       boolean,
    private_channel   boolean,           -- asks to move to DM / PM / private message
    has_link          boolean,
    has_media         boolean,
    hashtags          varchar[],
    signature         varchar,           -- agent signature such as ^JK or -Becky at the end of the text
    like_count        bigint,
    repost_count      bigint,
    reply_count       bigint,
    source            varchar not null,
    ingest_run_id     bigint,
    loaded_at         timestamp not null,
    primary key (platform, post_id)
);

create table sync_state (
    source          varchar not null,    -- connector name, e.g. x, reddit, mastodon, bluesky
    account         varchar not null,    -- handle_key or stream partition
    cursor_name     varchar not null,    -- since_id, after, min_id, cursor, ...
    cursor_value    varchar,
    updated_at      timestamp not null,
    primary key (source, account, cursor_name)
);

create table rejected_rows (
    run_id          bigint not null,
    source          varchar not null,
    line            bigint,
    field           varchar,
    reason          varchar not null,
    raw_excerpt     varchar
);

-- Long format: one row per feature value, keyed by (as_of, window, scope, org, account).
create table features (
    as_of           timestamp not null,
    window_days     integer not null,    -- 0 = all data up to as_of
    scope           varchar not null,    -- account | org
    org_id          varchar not null,    -- '' for unassigned accounts
    platform        varchar not null,    -- '' at org scope
    account         varchar not null,    -- '' at org scope
    feature         varchar not null,
    value           double,
    evidence        bigint,              -- how many observations the value rests on
    computed_at     timestamp not null,
    primary key (as_of, window_days, scope, org_id, platform, account, feature)
);

create table estimates (
    run_id          varchar not null,
    as_of           timestamp not null,
    org_id          varchar not null,
    model           varchar not null,
    stage           varchar,
    stage_index     integer,
    confidence      double,
    status          varchar not null,
    rule_stage      varchar,
    classifier_stage varchar,
    probabilities   json,
    explanation     json,
    computed_at     timestamp not null,
    primary key (as_of, org_id, model)
);
