-- group: team
-- feature: agent_signatures | agents | Distinct agent signatures (the name or initials ending a reply, such as ^JK or -Becky, case-sensitive as written) in the account's (organisation's) replies posted in the period.
-- feature: estimated_team_size | agents | Agents estimated to answer: signatures that sign at least 2 replies in the period (one-off signatures are not counted as team members); at least 1 when the account (organisation) replied at all, 0 without replies.
-- feature: signed_reply_share | share | Replies in the period that end with an agent signature, divided by replies.
-- feature: reply_hours_covered | hours | Hours of the day (0-23, organisation local time) with at least one reply in the period: 0 to 24, 24 = round-the-clock coverage.
with
org_replies as (
    select account_key, org_key, signature, hour(local_at) as local_hour
    from stg_org_posts
    where in_reply_to is not null
      and created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
-- counted per account, then per organisation from its accounts' counts (not from the replies again)
account_signatures as (
    select account_key, org_key, signature, count(*) as signed
    from org_replies where signature is not null group by all
),
per_signature as (
    select account_key as key, signature, signed from account_signatures
    union all
    select org_key, signature, sum(signed)::bigint from account_signatures
    where org_key in (select org_key from stg_shared_orgs)
    group by all
),
signatures as (
    select key, count(*) as agent_signatures,
           count(*) filter (where signed >= 2) as recurring, sum(signed) as signed
    from per_signature group by all
),
account_hours as (
    select account_key, org_key, local_hour, count(*) as replies from org_replies group by all
),
per_hour as (
    select account_key as key, local_hour, replies from account_hours
    union all
    select org_key, local_hour, sum(replies)::bigint from account_hours
    where org_key in (select org_key from stg_shared_orgs)
    group by all
),
per_key as (
    select key, sum(replies)::bigint as replies, count(local_hour) as reply_hours_covered
    from per_hour group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(s.agent_signatures, 0) as agent_signatures,
           coalesce(p.replies, 0) as agent_signatures__n,
           case when coalesce(p.replies, 0) = 0 then 0 else greatest(coalesce(s.recurring, 0), 1) end
               as estimated_team_size,
           coalesce(s.signed, 0) as estimated_team_size__n,
           coalesce(s.signed, 0) / nullif(p.replies, 0)::double as signed_reply_share,
           coalesce(p.replies, 0) as signed_reply_share__n,
           coalesce(p.reply_hours_covered, 0) as reply_hours_covered,
           coalesce(p.replies, 0) as reply_hours_covered__n
    from stg_feature_keys k
    left join per_key p on p.key = k.stats_key
    left join signatures s on s.key = k.stats_key
)
select * from final
