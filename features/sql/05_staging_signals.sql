-- group: staging_signals
-- Inputs of the signal groups beyond the core (built after 00_staging.sql, same variables):
--   stg_org_posts  posts by org accounts up to as_of, with org_id, role, local_at (organisation time zone)
--                  and the content flags features/text.py derives from their stored text
--   stg_threads    every post up to as_of with its thread root, its depth in the thread (root = 1),
--                  author_key and by_org

-- Local time: the UTC offset is looked up once per (time zone, 15-minute bucket) present, not per post
-- (every time-zone transition falls on a quarter hour, so a bucket has one offset).
create or replace temp macro local_offset(tz, bucket) as
    timezone(tz, bucket at time zone 'UTC') - bucket;

create or replace temp table stg_org_posts as
with
own as (
    select p.platform, p.post_id, p.author_key as account, oa.org_id, oa.role, p.created_at,
           oa.timezone, time_bucket(interval 15 minutes, p.created_at) as bucket,
           p.in_reply_to, private_channel(p.text) as private_channel, has_link(p.text) as has_link, p.has_media,
           len(hashtags(p.text)) > 0 as has_hashtag, signature(p.text) as signature,
           p.like_count, p.repost_count, p.reply_count
    from posts p
    join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.author_key
    where p.created_at <= getvariable('as_of')
),
offsets as (
    select timezone, bucket, local_offset(timezone, bucket) as utc_offset
    from (select distinct timezone, bucket from own)
)
select o.platform, o.post_id, o.account, o.org_id, o.role, o.created_at, o.created_at + f.utc_offset as local_at,
       o.in_reply_to, o.private_channel, o.has_link, o.has_media, o.has_hashtag, o.signature,
       o.like_count, o.repost_count, o.reply_count
from own o
join offsets f using (timezone, bucket);

-- Threads: a root is a post whose parent is not stored (or that replies to nothing); its descendants
-- follow in_reply_to links. Depth is capped at 1,000 so a reply cycle in bad data cannot loop forever.
create or replace temp table stg_threads as
with recursive
replies as (
    select platform, post_id, in_reply_to, author_key, by_org from stg_posts where in_reply_to is not null
),
walk(platform, post_id, root_id, depth, author_key, by_org) as (
    select p.platform, p.post_id, p.post_id, 1, p.author_key, p.by_org
    from stg_posts p
    where p.in_reply_to is null
       or not exists (select 1 from stg_posts q where q.platform = p.platform and q.post_id = p.in_reply_to)
    union all
    select r.platform, r.post_id, w.root_id, w.depth + 1, r.author_key, r.by_org
    from walk w
    join replies r on r.platform = w.platform and r.in_reply_to = w.post_id
    where w.depth < 1000
)
select * from walk;
