-- group: staging_signals
-- Inputs of the signal groups beyond the core (built after 00_staging.sql from the conversation facts,
-- same variables):
--   stg_org_posts         posts by org accounts up to as_of, with org_id, their feature keys
--                         (account_key, org_key: 00_staging.sql), role, local_at (organisation
--                         time zone), the content flags features/text.py derives from their stored text
--                         grand_account (a reply's post two steps up, when the step between is a
--                         customer's) with that account's organisation (grand_org_id), root_id and
--                         thread_depth (its thread's)
--   stg_growing_threads   per thread with posts after as_of: its depth (longest reply chain, root =
--                         1) and its distinct non-organisation authors up to as_of
--   stg_customer_replies  customer posts up to as_of replying to another customer, with the org
--                         account that conversation is addressed to
--   stg_mention_signals   the mentions of stg_mentions with what the signal groups read of them
--                         beyond it: posted in business hours (their organisation's, in its local
--                         time) and in a multi-party thread (one with at least two distinct
--                         non-organisation authors up to as_of); only the columns those groups read
--   stg_local_offsets     the UTC offset of every (time zone, 15-minute bucket) those posts and
--                         mentions fall in
-- The lookups every window needs depend on as_of only: they are made here, once for all windows.

-- Local time: the UTC offset is looked up once per (time zone, 15-minute bucket) present, not per post
-- (every time-zone transition falls on a quarter hour, so a bucket has one offset): stg_local_offsets.
create or replace temp macro local_offset(tz, bucket) as
    timezone(tz, bucket at time zone 'UTC') - bucket;

-- Its own table, not a CTE of the queries below: derived there from their wide rows, the planner
-- misjudges its size and the join costs more than the lookups it saves.
create or replace temp table stg_local_offsets as
with buckets as (
    select oa.timezone, time_bucket(interval 15 minutes, p.created_at) as bucket
    from fact_org_posts p
    join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.account
    where p.created_at <= getvariable('as_of')
    union
    select oa.timezone, time_bucket(interval 15 minutes, m.created_at)
    from stg_mentions_all m
    join stg_org_accounts oa using (account_key)
)
select timezone, bucket, local_offset(timezone, bucket) as utc_offset from buckets;

-- A fact carries its whole thread's depth and customers (migration 014): right for every thread whose
-- newest post is not after as_of. The threads still growing after as_of are counted from their posts
-- up to as_of here; a fact of one of them takes these instead.
create or replace temp table stg_growing_threads as
select platform, root_id, max(depth) as depth, count(distinct author_key) filter (where not by_org) as customers
from fact_thread_posts
where created_at <= getvariable('as_of') and thread_last_at > getvariable('as_of') and root_id is not null
group by platform, root_id;

create or replace temp table stg_org_posts as
with
own as (
    select p.platform, p.post_id, p.root_id, p.account, oa.org_id, oa.account_key, oa.org_key, oa.role, p.created_at,
           oa.timezone, time_bucket(interval 15 minutes, p.created_at) as bucket,
           p.in_reply_to, p.private_channel, p.has_link, p.has_media, p.has_hashtag, p.signature,
           p.like_count, p.repost_count, p.reply_count, p.grand_account, p.thread_depth
    from fact_org_posts p
    join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.account
    where p.created_at <= getvariable('as_of')
)
select o.platform, o.post_id, o.account, o.org_id, o.account_key, o.org_key, o.role, o.created_at, o.created_at + f.utc_offset as local_at,
       o.in_reply_to, o.private_channel, o.has_link, o.has_media, o.has_hashtag, o.signature,
       o.like_count, o.repost_count, o.reply_count, o.grand_account, g.org_id as grand_org_id, o.root_id,
       coalesce(gt.depth, o.thread_depth) as thread_depth
from own o
join stg_local_offsets f using (timezone, bucket)
left join stg_org_accounts g on g.platform = o.platform and g.handle_key = o.grand_account
left join stg_growing_threads gt on gt.platform = o.platform and gt.root_id = o.root_id;

-- A view: a filter of the facts, cheaper to scan again than to copy (it reads as_of when queried).
create or replace temp view stg_customer_replies as
select platform, post_id, created_at, c2c_account as account
from fact_thread_posts
where created_at <= getvariable('as_of') and c2c_account is not null;

-- Narrow: a copy of every mention column cost more than the rest of this file at 10M posts.
create or replace temp table stg_mention_signals_all as
with
zoned as (
    select m.account_key, m.org_key, m.created_at, m.answered, m.first_reply_s, m.is_question,
           m.platform, m.root_id, m.whole_thread_customers,
           oa.timezone, time_bucket(interval 15 minutes, m.created_at) as bucket,
           oa.business_start, oa.business_end
    from stg_mentions_all m
    join stg_org_accounts oa using (account_key)
),
localised as (
    select z.*, z.created_at + f.utc_offset as local_at,
           coalesce(gt.customers, z.whole_thread_customers) as thread_customers
    from zoned z
    join stg_local_offsets f using (timezone, bucket)
    left join stg_growing_threads gt on gt.platform = z.platform and gt.root_id = z.root_id
)
select account_key, org_key, created_at, answered, first_reply_s, is_question,
       isodow(local_at) <= 5 and case
           when business_start <= business_end
               then local_at::time >= business_start and local_at::time < business_end
           else local_at::time >= business_start or local_at::time < business_end
       end as in_business_hours,
       coalesce(thread_customers, 1) >= 2 as multi_party
from localised;

-- per window: the mentions posted in it, as stg_mentions (00_staging.sql)
create or replace temp view stg_mention_signals as
select * from stg_mention_signals_all
where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity');
