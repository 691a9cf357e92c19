-- group: staging
-- Shared inputs for every feature group, built once per (as_of, window) from the conversation facts
-- (features/facts.py, refreshed by the runner before a build): filtered by time, never derived again.
--   stg_org_accounts  every organisation account: configured in the config or discovered in data,
--                     with mention_key, the pseudonym its @handle has in posts.mentions, and the keys
--                     of its feature rows (account_key; org_key, NULL without an organisation)
--   stg_feature_keys  one row per account and per configured organisation: the rows every group fills,
--                     each with its integer key; a group aggregates by key (an integer groups and joins
--                     several times faster than scope, org_id, platform and account) and names the row
--                     by joining stg_feature_keys at the end; stats_key is the key whose aggregates
--                     fill the row: its own, but an organisation with a single account has exactly that
--                     account's features (the same posts and mentions), so it takes the account's and
--                     groups aggregate by org_key only the organisations of several accounts (an
--                     organisation's rows cost as much as its accounts' again); stg_shared_orgs:
--                     the org_key of those organisations of several accounts
--   stg_mentions      inbound mentions (assigned to one org account) with their first-reply latency,
--                     thread root and whether a direct reply of that account up to as_of moved to a
--                     private channel, posted in the window (stg_mentions_all: all of them up to as_of);
--                     whole_thread_customers: its thread's distinct customers, after as_of too
--                     (stg_mention_signals counts them up to as_of)
-- The signal groups' own inputs (stg_org_posts, stg_customer_replies, stg_mention_signals) are built by
-- 05_staging_signals.sql.
-- Variables: as_of (timestamp), window_start (timestamp or null = all data), reply_limit_s (72 h).

create or replace temp table stg_org_accounts as
select a.platform, a.handle_key, a.handle, coalesce(a.org_id, '') as org_id, a.role, a.configured,
       pseudonym(a.handle_key) as mention_key,
       row_number() over (order by a.platform, a.handle_key) as account_key,
       -- after every account key: the two kinds of key never meet
       case when coalesce(a.org_id, '') <> ''
            then count(*) over () + dense_rank() over (order by a.org_id) end as org_key,
       -- unassigned accounts (no organisation) are read in UTC with the default 09:00-17:00 hours
       coalesce(o.timezone, 'UTC') as timezone,
       coalesce(o.business_start, time '09:00') as business_start,
       coalesce(o.business_end, time '17:00') as business_end
from accounts a
left join organisations o on o.org_id = a.org_id;

create or replace temp table stg_feature_keys as
select account_key as key, 'account' as scope, org_id, platform, handle_key as account, account_key as stats_key
from stg_org_accounts
union all
select org_key, 'org', org_id, '', '', case when count(*) = 1 then min(account_key) else org_key end
from stg_org_accounts where org_key is not null
group by org_key, org_id;

-- the organisations whose rows a group aggregates itself: those of several accounts (the others take
-- their account's, stats_key)
create or replace temp table stg_shared_orgs as
select key as org_key from stg_feature_keys where scope = 'org' and stats_key = key;

create or replace temp table stg_mentions_all as
with
judged as (
    -- a mention can only be judged once reply_limit_s has passed since it was posted; an assignment
    -- known only after as_of (the first reply came later) falls back to the account the text @-mentions,
    -- which then has no reply within the limit either (it would have been the first reply)
    select *, assigned_at <= getvariable('as_of') as known
    from fact_mentions
    where created_at <= getvariable('as_of') - to_seconds(getvariable('reply_limit_s'))
),
assigned as (
    select platform, post_id, root_id, created_at, is_question, customer,
           case when known then account else text_account end as account,
           case when known then assignment_rule else 3 end as assignment_rule,
           case when known then first_reply_s end as first_reply_s,
           coalesce(known and private_reply_at <= getvariable('as_of'), false) as went_private,
           thread_customers as whole_thread_customers
    from judged
    where known or text_account is not null
)
select a.platform, a.post_id, a.created_at, a.is_question, a.customer, a.account, a.assignment_rule,
       oa.org_id, oa.account_key, oa.org_key,
       a.first_reply_s, a.first_reply_s is not null as answered, a.root_id, a.went_private,
       a.whole_thread_customers
from assigned a
join stg_org_accounts oa on oa.platform = a.platform and oa.handle_key = a.account;

-- per window: everything above depends on as_of only (built once per as_of by the runner); the window
-- selects the mentions posted in it (assignment and answers never depend on the window). A view: a
-- filter is cheaper to scan again than to copy (it reads the variables when queried)
create or replace temp view stg_mentions as
select * from stg_mentions_all
where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity');
