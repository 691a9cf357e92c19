-- group: cadence
-- Cadence over a robust observed span (beside the period-based cadence of 10_cadence.sql): the span is
-- where the middle 90% of the posts lie, so one stray old post cannot stretch it (a single 2016 tweet
-- turns Delta's all-data span in the twcs prefix into 484 days; its P5-P95 span is 48 days).
-- feature: posts_per_day_robust | posts/day | 0.9 x posts / span in days, where span = P95 - P5 of the post times in the period (linear quantiles; an organisation's posts merged across its accounts): 90% of the posts lie in that span. NULL with fewer than 20 posts or a span under 14 days (no evidence of a cadence).
-- feature: active_week_share | share | Calendar weeks (ISO, Monday start) with at least one post between P5 and P95 of the post times, divided by the weeks that span touches. NULL under the same conditions as posts_per_day_robust.
-- feature: proactive_posts | posts | Posts in the period that reply to nothing (in_reply_to empty): the organisation's own content rather than answers.
with
own as (
    select account_key, org_key, created_at, in_reply_to from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
scoped as (
    select account_key as key, created_at, in_reply_to from own
    union all
    select org_key, created_at, in_reply_to from own
    where org_key in (select org_key from stg_shared_orgs)
),
span_list as (
    select key, count(*) as posts,
           count(*) filter (where in_reply_to is null) as proactive_posts,
           quantile_cont(epoch(created_at), [0.05, 0.95]) as span
    from scoped group by all
),
spans as (
    select key, posts, proactive_posts, to_timestamp(span[1])::timestamp as span_start,
           to_timestamp(span[2])::timestamp as span_end
    from span_list
),
weeks as (
    select s.key, count(distinct date_trunc('week', p.created_at)) as active_weeks
    from scoped p
    join spans s using (key)
    where p.created_at between s.span_start and s.span_end
    group by all
),
judged as (
    select s.*, coalesce(w.active_weeks, 0) as active_weeks,
           (epoch(s.span_end) - epoch(s.span_start)) / 86400.0 as span_days,
           date_diff('week', date_trunc('week', s.span_start), date_trunc('week', s.span_end)) + 1 as span_weeks
    from spans s left join weeks w using (key)
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           case when j.posts >= 20 and j.span_days >= 14 then 0.9 * j.posts / j.span_days end
               as posts_per_day_robust,
           coalesce(j.posts, 0) as posts_per_day_robust__n,
           case when j.posts >= 20 and j.span_days >= 14 then j.active_weeks / j.span_weeks::double end
               as active_week_share,
           coalesce(j.posts, 0) as active_week_share__n,
           coalesce(j.proactive_posts, 0) as proactive_posts,
           coalesce(j.posts, 0) as proactive_posts__n
    from stg_feature_keys k
    left join judged j on j.key = k.stats_key
)
select * from final
