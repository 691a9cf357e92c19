-- group: structure
-- Who answers: replies, an active support-role account, and the platforms the organisation answers on.
-- feature: replies | replies | Posts by the account (organisation) in the period that reply to another post (in_reply_to set).
-- feature: care_account_active | flag | 1 when an account with the role `support` posted at least once in the period, else 0.
-- feature: platforms_engaged | platforms | Distinct platforms on which the account (organisation) answered at least 10 inbound mentions in the period (answered as in responsiveness): platforms used for customer care, not just for posting.
with
-- counted per account, then per organisation from its accounts' counts (not from the posts again)
account_activity as (
    select account_key, org_key, count(*) as posts,
           count(*) filter (where in_reply_to is not null) as replies,
           max((lower(coalesce(role, 'other')) = 'support')::int) as care_account_active
    from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
    group by all
),
activity as (
    select account_key as key, posts, replies, care_account_active from account_activity
    union all
    select org_key, sum(posts)::bigint, sum(replies)::bigint, max(care_account_active) from account_activity
    where org_key in (select org_key from stg_shared_orgs)
    group by all
),
answered as (
    select account_key, org_key, platform, count(*) as answered from stg_mentions where answered group by all
),
answered_scoped as (
    select account_key as key, platform as answered_on, answered from answered
    union all
    select org_key, platform, answered from answered
    where org_key in (select org_key from stg_shared_orgs)
),
engaged as (
    select key, count(distinct answered_on) as platforms_engaged, sum(answered) as answered
    from (select key, answered_on, sum(answered) as answered
          from answered_scoped group by all)
    where answered >= 10
    group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(a.replies, 0) as replies,
           coalesce(a.posts, 0) as replies__n,
           coalesce(a.care_account_active, 0) as care_account_active,
           coalesce(a.posts, 0) as care_account_active__n,
           coalesce(e.platforms_engaged, 0) as platforms_engaged,
           coalesce(e.answered, 0) as platforms_engaged__n
    from stg_feature_keys k
    left join activity a on a.key = k.stats_key
    left join engaged e on e.key = k.stats_key
)
select * from final
