-- group: cadence
-- feature: posts | posts | Posts written by the account (or the organisation's accounts) in the period.
-- feature: posts_per_day | posts/day | posts divided by the period length in days. The period is the window (as_of - window, as_of]; with no window it runs from the first post of the account (organisation) to as_of, at least one day.
-- feature: active_day_share | share | Distinct UTC calendar dates with at least one post, divided by the number of calendar dates in the period (first and last date included).
with
own_posts as (
    -- straight from the facts, not stg_org_posts: the trend's previous windows need only this and
    -- the mentions, so they skip the signal staging (local times, threads)
    select oa.account_key, oa.org_key, p.created_at
    from fact_org_posts p
    join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.account
    where p.created_at <= getvariable('as_of')
      and p.created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
-- posts per account and day first: an organisation's days and posts come from its accounts' (not from
-- the posts again)
own_days as (
    select account_key, org_key, created_at::date as day, count(*) as posts, min(created_at) as first_at
    from own_posts group by all
),
scoped as (
    select account_key as key, day, posts, first_at from own_days
    union all
    select org_key, day, posts, first_at from own_days
    where org_key in (select org_key from stg_shared_orgs)
),
per_key as (
    select key,
           sum(posts)::bigint as posts,
           count(distinct day) as active_days,
           coalesce(getvariable('window_start'), min(first_at)) as period_start
    from scoped
    group by key
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(p.posts, 0) as posts,
           coalesce(p.posts, 0) / greatest(
               (epoch(getvariable('as_of')) - epoch(p.period_start)) / 86400.0, 1.0) as posts_per_day,
           coalesce(p.active_days, 0) / (date_diff('day', p.period_start::date, getvariable('as_of')::date) + 1)::double
               as active_day_share,
           coalesce(p.posts, 0) as posts__n,
           coalesce(p.posts, 0) as posts_per_day__n,
           coalesce(date_diff('day', p.period_start::date, getvariable('as_of')::date) + 1, 0) as active_day_share__n
    from stg_feature_keys k
    left join per_key p on p.key = k.stats_key
)
select * from final
