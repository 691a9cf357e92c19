-- group: responsiveness
-- feature: mentions | mentions | Inbound mentions assigned to the account: posts by a non-org author that (1) reply to a post by the account; else (2) are replied to by it (the org account whose reply came first); else (3) @-mention it in the text (the first org account mentioned). Counted when posted in the period and at least 72 h before as_of.
-- feature: answered | mentions | Mentions the assigned account replied to directly (in_reply_to) with a latency of 0 to 72 h.
-- feature: response_rate | share | answered / mentions.
-- feature: first_reply_median_s | seconds | Median first-reply latency over answered mentions (linear interpolation, quantile_cont).
-- feature: first_reply_p90_s | seconds | 90th percentile of first-reply latency over answered mentions (linear interpolation, quantile_cont).
-- feature: answered_within_1h_share | share | Mentions answered with a first-reply latency of at most 3,600 s, divided by mentions.
-- feature: business_hours_median_s | seconds | Median first-reply latency over answered mentions posted in business hours: Monday to Friday, organisation local time from business_start (included) to business_end (excluded), from the organisations table (UTC 09:00-17:00 for unassigned accounts).
-- feature: off_hours_median_s | seconds | Median first-reply latency over answered mentions posted outside business hours (evenings, nights, weekends).
-- feature: question_share | share | Mentions whose text contains '?' divided by mentions.
-- feature: question_response_rate | share | Answered question mentions (text contains '?') divided by question mentions.
-- feature: multi_party_reply_share | share | Answered mentions in a multi-party thread, divided by answered mentions. Multi-party: the thread (the mention's root and every post below it) holds posts by at least two distinct non-organisation authors.
with
thread_customers as (
    select t.platform, t.root_id, count(distinct p.author_key) as customers
    from stg_threads t
    join stg_posts p on p.platform = t.platform and p.post_id = t.post_id and not p.by_org
    group by t.platform, t.root_id
),
mention_threads as (
    select m.platform, m.post_id, coalesce(tc.customers, 1) >= 2 as multi_party
    from stg_mentions m
    join stg_threads t on t.platform = m.platform and t.post_id = m.post_id
    left join thread_customers tc on tc.platform = t.platform and tc.root_id = t.root_id
),
mentions_ext as (
    select m.*, coalesce(mt.multi_party, false) as multi_party
    from stg_mentions m left join mention_threads mt using (platform, post_id)
),
scoped as (
    select 'account' as scope, org_id, platform, account, answered, first_reply_s,
           in_business_hours, is_question, multi_party from mentions_ext
    union all
    select 'org', org_id, '', '', answered, first_reply_s,
           in_business_hours, is_question, multi_party from mentions_ext where org_id <> ''
),
per_key as (
    select scope, org_id, platform, account,
           count(*) as mentions,
           count(*) filter (where answered) as answered,
           quantile_cont(first_reply_s, 0.5) as first_reply_median_s,
           quantile_cont(first_reply_s, 0.9) as first_reply_p90_s,
           count(*) filter (where first_reply_s <= 3600) as within_1h,
           quantile_cont(first_reply_s, 0.5) filter (where in_business_hours) as business_hours_median_s,
           count(*) filter (where answered and in_business_hours) as business_answered,
           quantile_cont(first_reply_s, 0.5) filter (where not in_business_hours) as off_hours_median_s,
           count(*) filter (where answered and not in_business_hours) as off_answered,
           count(*) filter (where is_question) as questions,
           count(*) filter (where is_question and answered) as questions_answered,
           count(*) filter (where answered and multi_party) as multi_party_answered
    from scoped
    group by scope, org_id, platform, account
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(p.mentions, 0) as mentions,
           coalesce(p.answered, 0) as answered,
           p.answered / nullif(p.mentions, 0)::double as response_rate,
           p.first_reply_median_s,
           p.first_reply_p90_s,
           coalesce(p.mentions, 0) as mentions__n,
           coalesce(p.mentions, 0) as answered__n,
           coalesce(p.mentions, 0) as response_rate__n,
           coalesce(p.answered, 0) as first_reply_median_s__n,
           coalesce(p.answered, 0) as first_reply_p90_s__n,
           p.within_1h / nullif(p.mentions, 0)::double as answered_within_1h_share,
           coalesce(p.mentions, 0) as answered_within_1h_share__n,
           p.business_hours_median_s,
           coalesce(p.business_answered, 0) as business_hours_median_s__n,
           p.off_hours_median_s,
           coalesce(p.off_answered, 0) as off_hours_median_s__n,
           p.questions / nullif(p.mentions, 0)::double as question_share,
           coalesce(p.mentions, 0) as question_share__n,
           p.questions_answered / nullif(p.questions, 0)::double as question_response_rate,
           coalesce(p.questions, 0) as question_response_rate__n,
           p.multi_party_answered / nullif(p.answered, 0)::double as multi_party_reply_share,
           coalesce(p.answered, 0) as multi_party_reply_share__n
    from stg_feature_keys k
    left join per_key p using (scope, org_id, platform, account)
)
select * from final
