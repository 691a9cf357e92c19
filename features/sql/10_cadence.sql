-- group: cadence
-- feature: posts | posts | Posts written by the account (or the organisation's accounts) in the period.
-- feature: posts_per_day | posts/day | posts divided by the period length in days. The period is the window (as_of - window, as_of]; with no window it runs from the first post of the account (organisation) to as_of, at least one day.
-- feature: active_day_share | share | Distinct UTC calendar dates with at least one post, divided by the number of calendar dates in the period (first and last date included).
-- feature: post_gap_cv | ratio | Regularity: coefficient of variation (population standard deviation / mean) of the gaps in seconds between consecutive posts in the period (an organisation's posts merged across its accounts). Needs at least 2 gaps (3 posts) and a mean gap above 0, else NULL; 0 = perfectly regular.
-- feature: weekday_hour_coverage | share | Share of the 168 weekday x hour-of-day cells (organisation local time; UTC for unassigned accounts) with at least one post in the period.
with
own_posts as (
    select oa.org_id, oa.platform, oa.handle_key as account, p.created_at
    from stg_posts p
    join stg_org_accounts oa on oa.platform = p.platform and oa.handle_key = p.author_key
    where p.created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
scoped as (
    select 'account' as scope, org_id, platform, account, created_at from own_posts
    union all
    select 'org', org_id, '', '', created_at from own_posts where org_id <> ''
),
per_key as (
    select scope, org_id, platform, account,
           count(*) as posts,
           count(distinct created_at::date) as active_days,
           coalesce(getvariable('window_start'), min(created_at)) as period_start
    from scoped
    group by scope, org_id, platform, account
),
local_posts as (
    select org_id, platform, account, created_at, local_at from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
local_scoped as (
    select 'account' as scope, org_id, platform, account, created_at, local_at from local_posts
    union all
    select 'org', org_id, '', '', created_at, local_at from local_posts where org_id <> ''
),
gaps as (
    select scope, org_id, platform, account,
           epoch(created_at) - epoch(lag(created_at) over (
               partition by scope, org_id, platform, account order by created_at)) as gap_s,
           isodow(local_at) * 24 + hour(local_at) as weekday_hour
    from local_scoped
),
regularity as (
    select scope, org_id, platform, account,
           count(gap_s) as gaps,
           case when count(gap_s) >= 2 and avg(gap_s) > 0 then stddev_pop(gap_s) / avg(gap_s) end
               as post_gap_cv,
           count(distinct weekday_hour) / 168.0 as weekday_hour_coverage
    from gaps
    group by scope, org_id, platform, account
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
           coalesce(date_diff('day', p.period_start::date, getvariable('as_of')::date) + 1, 0) as active_day_share__n,
           r.post_gap_cv,
           coalesce(r.gaps, 0) as post_gap_cv__n,
           coalesce(r.weekday_hour_coverage, 0) as weekday_hour_coverage,
           coalesce(p.posts, 0) as weekday_hour_coverage__n
    from stg_feature_keys k
    left join per_key p using (scope, org_id, platform, account)
    left join regularity r using (scope, org_id, platform, account)
)
select * from final
