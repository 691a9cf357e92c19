-- group: responsiveness
-- Responsiveness signals beyond the core five of 20_responsiveness.sql (same group in the dictionary).
-- feature: answered_within_1h_share | share | Mentions answered with a first-reply latency of at most 3,600 s, divided by mentions.
-- feature: business_hours_median_s | seconds | Median first-reply latency over answered mentions posted in business hours: Monday to Friday, organisation local time from business_start (included) to business_end (excluded; an end before the start runs overnight), from the organisations table (UTC 09:00-17:00 for unassigned accounts).
-- feature: off_hours_median_s | seconds | Median first-reply latency over answered mentions posted outside business hours (evenings, nights, weekends).
-- feature: question_share | share | Mentions whose text contains '?' divided by mentions. Customers' text is not stored by default (README, Privacy): for those mentions the same test (features/text.py) runs at import and only its result is kept, so a changed definition applies to them after a re-import; stored text is tested at build time.
-- feature: question_response_rate | share | Answered question mentions (text contains '?', tested as for question_share) divided by question mentions.
-- feature: multi_party_reply_share | share | Answered mentions in a multi-party thread, divided by answered mentions. Multi-party: the thread (the mention's root and every post below it) holds posts by at least two distinct non-organisation authors.
with
scoped as (
    -- stg_mention_signals: the window's mentions with their business-hours and multi-party flags
    select account_key as key, answered, first_reply_s, in_business_hours, is_question, multi_party
    from stg_mention_signals
    union all
    select org_key, answered, first_reply_s, in_business_hours, is_question, multi_party
    from stg_mention_signals where org_key in (select org_key from stg_shared_orgs)
),
per_hours as (
    -- one median per key and business hours or not, summed up per key below: cheaper than two
    -- filtered medians per key
    select key, in_business_hours,
           count(*) as mentions,
           count(*) filter (where answered) as answered,
           count(*) filter (where first_reply_s <= 3600) as within_1h,
           quantile_cont(first_reply_s, 0.5) as median_s,
           count(*) filter (where is_question) as questions,
           count(*) filter (where is_question and answered) as questions_answered,
           count(*) filter (where answered and multi_party) as multi_party_answered
    from scoped
    group by key, in_business_hours
),
per_key as (
    select key,
           sum(mentions)::bigint as mentions,
           sum(answered)::bigint as answered,
           sum(within_1h)::bigint as within_1h,
           any_value(median_s) filter (where in_business_hours) as business_hours_median_s,
           sum(answered) filter (where in_business_hours)::bigint as business_answered,
           any_value(median_s) filter (where not in_business_hours) as off_hours_median_s,
           sum(answered) filter (where not in_business_hours)::bigint as off_answered,
           sum(questions)::bigint as questions,
           sum(questions_answered)::bigint as questions_answered,
           sum(multi_party_answered)::bigint as multi_party_answered
    from per_hours
    group by key
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
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
    left join per_key p on p.key = k.stats_key
)
select * from final
