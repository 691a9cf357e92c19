-- group: staging
-- Shared inputs for every feature group, built once per (as_of, window):
--   stg_org_accounts  every organisation account: configured in the config or discovered in data,
--                     with mention_key, the pseudonym its @handle has in posts.mentions
--   stg_feature_keys  one row per account and per configured organisation: the rows every group fills
--   stg_posts         posts up to as_of, flagged when written by an org account, with is_question
--                     (features/text.py) of the stored text, or the flag kept at load where the
--                     customer's text is not stored
--   stg_mentions      inbound mentions (assigned to one org account) with their first-reply latency,
--                     posted in the window (stg_mentions_all: all of them up to as_of)
-- The signal groups' own inputs (stg_org_posts, stg_threads) are built by 05_staging_signals.sql.
-- Variables: as_of (timestamp), window_start (timestamp or null = all data), reply_limit_s (72 h).

create or replace temp table stg_org_accounts as
select a.platform, a.handle_key, a.handle, coalesce(a.org_id, '') as org_id, a.role, a.configured,
       pseudonym(a.handle_key) as mention_key,
       -- unassigned accounts (no organisation) are read in UTC with the default 09:00-17:00 hours
       coalesce(o.timezone, 'UTC') as timezone,
       coalesce(o.business_start, time '09:00') as business_start,
       coalesce(o.business_end, time '17:00') as business_end
from accounts a
left join organisations o on o.org_id = a.org_id;

create or replace temp table stg_feature_keys as
select 'account' as scope, org_id, platform, handle_key as account from stg_org_accounts
union all
select distinct 'org', org_id, '', '' from stg_org_accounts where org_id <> '';

create or replace temp table stg_posts as
select
    -- only what the mention rules and the groups' joins read: narrow rows keep this table cheap at scale
    p.platform, p.post_id, p.author_key, p.created_at, p.in_reply_to, p.mentions,
    coalesce(p.dropped_text_is_question, is_question(p.text)) as is_question,
    oa.handle_key is not null as by_org
from posts p
left join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.author_key
where p.created_at <= getvariable('as_of');

create or replace temp table stg_mentions_all as
with
customer_posts as (
    -- a mention can only be judged once reply_limit_s has passed since it was posted
    select * from stg_posts
    where not by_org
      and created_at <= getvariable('as_of') - to_seconds(getvariable('reply_limit_s'))
),
via_parent as (
    -- rule 1: the customer replies to a post by org account A
    select c.platform, c.post_id, parent.author_key as account
    from customer_posts c
    join stg_posts parent
      on parent.platform = c.platform and parent.post_id = c.in_reply_to and parent.by_org
),
org_replies as (
    -- per (customer post, org account replying to it): its first reply, and its earliest reply within
    -- [0, reply_limit_s]; one join serves rule 2 and the answered test
    select c.platform, c.post_id, r.author_key as account,
           min((r.created_at, r.post_id)) as first_key,
           min(epoch(r.created_at) - epoch(c.created_at)) filter (
               where epoch(r.created_at) - epoch(c.created_at) between 0 and getvariable('reply_limit_s'))
               as first_reply_s
    from customer_posts c
    join stg_posts r on r.platform = c.platform and r.in_reply_to = c.post_id and r.by_org
    group by c.platform, c.post_id, r.author_key
),
via_reply as (
    -- rule 2: org account A replies to it; with several, the account that replied first
    select platform, post_id, arg_min(account, first_key) as account
    from org_replies
    group by platform, post_id
),
mentioned as (
    select platform, post_id, unnest(mentions) as mention_key,
           unnest(range(1, len(mentions) + 1)) as position
    from customer_posts
    where len(mentions) > 0
),
via_text as (
    -- rule 3: the text @-mentions A (case-insensitive); the first org account mentioned wins
    select m.platform, m.post_id, arg_min(oa.handle_key, m.position) as account
    from mentioned m
    join stg_org_accounts oa on oa.platform = m.platform and oa.mention_key = m.mention_key
    group by m.platform, m.post_id
),
assigned as (
    select c.platform, c.post_id, c.created_at, c.is_question, c.author_key as customer,
           coalesce(vp.account, vr.account, vt.account) as account,
           case when vp.account is not null then 1 when vr.account is not null then 2 else 3 end
               as assignment_rule
    from customer_posts c
    left join via_parent vp using (platform, post_id)
    left join via_reply vr using (platform, post_id)
    left join via_text vt using (platform, post_id)
    where coalesce(vp.account, vr.account, vt.account) is not null
),
first_reply as (
    -- answered: a post by the assigned account replies directly within [0, reply_limit_s]
    select a.platform, a.post_id, o.first_reply_s
    from assigned a
    join org_replies o on o.platform = a.platform and o.post_id = a.post_id and o.account = a.account
    where o.first_reply_s is not null
)
select a.*, oa.org_id, f.first_reply_s, f.first_reply_s is not null as answered
from assigned a
join stg_org_accounts oa on oa.platform = a.platform and oa.handle_key = a.account
left join first_reply f on f.platform = a.platform and f.post_id = a.post_id;

-- per window: everything above depends on as_of only (built once per as_of by the runner); the window
-- selects the mentions posted in it (assignment and answers never depend on the window)
create or replace temp table stg_mentions as
select * from stg_mentions_all
where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity');
