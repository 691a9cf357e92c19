-- Conversation facts: what the feature builds aggregate, derived per post from the stored posts and the
-- set of organisation accounts, and kept current by features/facts.py as posts are loaded (only the
-- threads new or changed posts touch are derived again). Nothing here depends on as_of: a build for
-- any as_of filters these rows by time. No primary keys: a refresh deletes and re-inserts the rows of
-- the posts it derives again, which DuckDB does cheaply without an index.

-- Every stored post with its place in its thread (root_id and depth NULL when no root reaches it: a
-- reply cycle in bad data) and, for a customer reply to another customer, the organisation account
-- that conversation is addressed to.
create table fact_thread_posts (
    platform        varchar not null,
    post_id         varchar not null,
    in_reply_to     varchar,
    created_at      timestamp not null,
    author_key      varchar not null,
    by_org          boolean not null,
    root_id         varchar,
    depth           integer,
    c2c_account     varchar
);

-- One row per inbound mention: a customer post assigned to an organisation account by the first rule
-- that applies (1 replies to its post, 2 replied to by it, first reply first, 3 @-mentions it).
-- assigned_at is when the assignment can be known (rule 1: the parent's time, rule 2: the first
-- reply's, rule 3: the post's own); a build for an earlier as_of falls back to text_account (rule 3).
-- first_reply_s: the assigned account's earliest direct reply within [0, reply limit], else NULL;
-- private_reply_at: its earliest direct reply with private-channel wording. root_id: its thread's.
create table fact_mentions (
    platform        varchar not null,
    post_id         varchar not null,
    root_id         varchar,
    created_at      timestamp not null,
    is_question     boolean,
    customer        varchar not null,
    account         varchar not null,
    assignment_rule integer not null,
    assigned_at     timestamp not null,
    text_account    varchar,
    first_reply_s   double,
    private_reply_at timestamp
);

-- One row per post by an organisation account, with the flags its text gives (features/text.py) and,
-- for a reply to a customer post that itself replies to an organisation post, that post's account.
create table fact_org_posts (
    platform        varchar not null,
    post_id         varchar not null,
    root_id         varchar,
    account         varchar not null,
    created_at      timestamp not null,
    in_reply_to     varchar,
    private_channel boolean,
    has_link        boolean,
    has_media       boolean,
    has_hashtag     boolean,
    signature       varchar,
    like_count      bigint,
    repost_count    bigint,
    reply_count     bigint,
    grand_account   varchar
);

-- The organisation accounts the facts were derived with: a refresh compares them with `accounts`.
create table fact_accounts (
    platform        varchar not null,
    handle_key      varchar not null
);

-- One row: the facts code they were derived with (a different one derives everything again) and the
-- newest posts.loaded_at they cover.
create table fact_state (
    facts_code      varchar not null,
    loaded_through  timestamp,
    refreshed_at    timestamp not null
);
