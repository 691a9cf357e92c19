-- group: responsiveness
-- feature: mentions | mentions | Inbound mentions assigned to the account: posts by a non-org author that (1) reply to a post by the account; else (2) are replied to by it (the org account whose reply came first); else (3) @-mention it in the text (the first org account mentioned). Counted when posted in the period and at least 72 h before as_of.
-- feature: answered | mentions | Mentions the assigned account replied to directly (in_reply_to) with a latency of 0 to 72 h.
-- feature: response_rate | share | answered / mentions.
-- feature: first_reply_median_s | seconds | Median first-reply latency over answered mentions (linear interpolation, quantile_cont).
-- feature: first_reply_p90_s | seconds | 90th percentile of first-reply latency over answered mentions (linear interpolation, quantile_cont).
with
scoped as (
    select account_key as key, answered, first_reply_s from stg_mentions
    union all
    select org_key, answered, first_reply_s from stg_mentions
    where org_key in (select org_key from stg_shared_orgs)
),
per_key as (
    select key,
           count(*) as mentions,
           count(*) filter (where answered) as answered,
           quantile_cont(first_reply_s, [0.5, 0.9]) as first_reply_quantiles
    from scoped
    group by key
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(p.mentions, 0) as mentions,
           coalesce(p.answered, 0) as answered,
           p.answered / nullif(p.mentions, 0)::double as response_rate,
           p.first_reply_quantiles[1] as first_reply_median_s,
           p.first_reply_quantiles[2] as first_reply_p90_s,
           coalesce(p.mentions, 0) as mentions__n,
           coalesce(p.mentions, 0) as answered__n,
           coalesce(p.mentions, 0) as response_rate__n,
           coalesce(p.answered, 0) as first_reply_median_s__n,
           coalesce(p.answered, 0) as first_reply_p90_s__n
    from stg_feature_keys k
    left join per_key p on p.key = k.stats_key
)
select * from final
