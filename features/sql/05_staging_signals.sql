-- group: staging_signals
-- Inputs of the signal groups beyond the core (built after 00_staging.sql, same variables):
--   stg_org_posts  posts by org accounts up to as_of, with org_id, role, local_at (organisation time zone)
--                  and the content flags derived at load
--   stg_threads    every post up to as_of with its thread root and its depth in the thread (root = 1)

create or replace temp table stg_org_posts as
select p.platform, p.post_id, p.author_key as account, oa.org_id, oa.role, p.created_at,
       timezone(oa.timezone, p.created_at at time zone 'UTC') as local_at,
       p.in_reply_to, p.private_channel, p.has_link, p.has_media, len(p.hashtags) > 0 as has_hashtag,
       p.signature, p.like_count, p.repost_count, p.reply_count
from posts p
join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.author_key
where p.created_at <= getvariable('as_of');

-- Threads: a root is a post whose parent is not stored (or that replies to nothing); its descendants
-- follow in_reply_to links. Depth is capped at 1,000 so a reply cycle in bad data cannot loop forever.
create or replace temp table stg_threads as
with recursive
replies as (
    select platform, post_id, in_reply_to from stg_posts where in_reply_to is not null
),
walk(platform, post_id, root_id, depth) as (
    select p.platform, p.post_id, p.post_id, 1
    from stg_posts p
    where p.in_reply_to is null
       or not exists (select 1 from stg_posts q where q.platform = p.platform and q.post_id = p.in_reply_to)
    union all
    select r.platform, r.post_id, w.root_id, w.depth + 1
    from walk w
    join replies r on r.platform = w.platform and r.in_reply_to = w.post_id
    where w.depth < 1000
)
select * from walk;
