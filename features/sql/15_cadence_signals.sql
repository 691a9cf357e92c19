-- group: cadence
-- Cadence signals beyond the core three of 10_cadence.sql (same group in the dictionary).
-- feature: post_gap_cv | ratio | Regularity: coefficient of variation (population standard deviation / mean) of the gaps in seconds between consecutive posts in the period (an organisation's posts merged across its accounts). Needs at least 2 gaps (3 posts) and a mean gap above 0, else NULL; 0 = perfectly regular.
-- feature: weekday_hour_coverage | share | Share of the 168 weekday x hour-of-day cells (organisation local time; UTC for unassigned accounts) with at least one post in the period.
with
local_posts as (
    select account_key, org_key, created_at, local_at from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
local_scoped as (
    select account_key as key, created_at, local_at from local_posts
    union all
    select org_key, created_at, local_at from local_posts
    where org_key in (select org_key from stg_shared_orgs)
),
gaps as (
    select key,
           epoch_us(created_at) - epoch_us(lag(created_at) over (partition by key order by created_at)) as gap_us,
           isodow(local_at) * 24 + hour(local_at) as weekday_hour
    from local_scoped
),
regularity as (
    select key,
           count(*) as posts,
           count(gap_us) as gaps,
           -- sd / mean = sqrt(n * sum(x^2) - sum(x)^2) / sum(x), from exact integer sums of the gaps in
           -- microseconds: the same value whatever order the rows are added in (float sums differ in
           -- their last bits between runs of DuckDB's parallel aggregation, and between shards)
           case when count(gap_us) >= 2 and sum(gap_us) > 0
                then sqrt((count(gap_us) * sum(gap_us::hugeint * gap_us)
                           - sum(gap_us::hugeint) * sum(gap_us::hugeint))::double) / sum(gap_us)::double end
               as post_gap_cv,
           count(distinct weekday_hour) / 168.0 as weekday_hour_coverage
    from gaps
    group by key
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           r.post_gap_cv,
           coalesce(r.gaps, 0) as post_gap_cv__n,
           coalesce(r.weekday_hour_coverage, 0) as weekday_hour_coverage,
           coalesce(r.posts, 0) as weekday_hour_coverage__n
    from stg_feature_keys k
    left join regularity r on r.key = k.stats_key
)
select * from final
