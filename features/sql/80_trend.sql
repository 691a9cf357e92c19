-- group: trend
-- windows: 30, 90 (any window > 0; NULL for window 0)
-- Reads the current window's groups (feat_cadence, feat_responsiveness) and the same groups computed by
-- the runner for the previous window (prev_cadence, prev_responsiveness: as_of - window, same length).
-- feature: posts_per_day_trend | posts/day | posts_per_day in the window minus posts_per_day in the previous window of the same length (as_of - 2 x window to as_of - window). Windows > 0 only; NULL for window 0 (all data).
-- feature: response_rate_trend | share | response_rate in the window minus response_rate in the previous window (each computed at its own end, so the 72 h judgement delay applies to both). Windows > 0 only.
-- feature: first_reply_median_s_trend | seconds | first_reply_median_s in the window minus the previous window's; negative = faster. Windows > 0 only.
-- feature: mentions_trend | mentions | mentions in the window minus mentions in the previous window. Windows > 0 only.
with
final as (
    select k.scope, k.org_id, k.platform, k.account,
           case when getvariable('window_days') > 0 then c.posts_per_day - pc.posts_per_day end
               as posts_per_day_trend,
           least(c.posts_per_day__n, pc.posts_per_day__n) as posts_per_day_trend__n,
           case when getvariable('window_days') > 0 then r.response_rate - pr.response_rate end
               as response_rate_trend,
           least(r.response_rate__n, pr.response_rate__n) as response_rate_trend__n,
           case when getvariable('window_days') > 0 then r.first_reply_median_s - pr.first_reply_median_s end
               as first_reply_median_s_trend,
           least(r.first_reply_median_s__n, pr.first_reply_median_s__n) as first_reply_median_s_trend__n,
           case when getvariable('window_days') > 0 then r.mentions - pr.mentions end as mentions_trend,
           least(r.mentions__n, pr.mentions__n) as mentions_trend__n
    from stg_feature_keys k
    left join feat_cadence c using (scope, org_id, platform, account)
    left join prev_cadence pc using (scope, org_id, platform, account)
    left join feat_responsiveness r using (scope, org_id, platform, account)
    left join prev_responsiveness pr using (scope, org_id, platform, account)
)
select * from final
