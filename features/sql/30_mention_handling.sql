-- group: mention_handling
-- feature: private_channel_share | share | Replies by the account (organisation) posted in the period whose text moves the customer to a private channel (DM, DMs, PM, direct/private message, message us, inbox; whole words, any case; matched in the stored text, where @handles are pseudonyms, so a handle never counts as wording), divided by those replies. A reply is a post with in_reply_to set.
-- feature: public_resolution_share | share | Answered mentions (see responsiveness) whose direct replies from the assigned account contain no private-channel wording, divided by answered mentions: conversations handled in public.
-- feature: multi_turn_share | share | Replies by the account (organisation) in the period that continue a back-and-forth: the parent is a non-organisation post which itself replies to a post by the same account (organisation); divided by its replies.
-- feature: conversation_depth_mean | posts | Mean depth of the conversations the account (organisation) took part in during the period: a conversation is a thread (a root post and every post below it through in_reply_to) holding at least one of its posts from the period; its depth is the longest reply chain from the root, in posts (root = 1).
with
org_replies as not materialized (
    -- not materialized: a filter of a staging table is cheaper to scan twice than to copy
    select account_key, org_key, account, org_id, private_channel, grand_account, grand_org_id
    from stg_org_posts
    where in_reply_to is not null
      and created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
reply_scoped as (
    -- what the parent (a customer post) replied to: an org post, by grand_account (of grand_org_id)
    select account_key as key, private_channel, coalesce(grand_account = account, false) as multi_turn
    from org_replies
    union all
    select org_key, private_channel, coalesce(grand_org_id = org_id, false)
    from org_replies where org_key in (select org_key from stg_shared_orgs)
),
reply_stats as (
    select key, count(*) as replies,
           avg(private_channel::int) as private_channel_share,
           avg(multi_turn::int) as multi_turn_share
    from reply_scoped group by all
),
answered_mentions as not materialized (
    -- not materialized: a filter of a staging table is cheaper to scan twice than to copy
    select account_key, org_key, went_private from stg_mentions where answered
),
answered_scoped as (
    select account_key as key, went_private from answered_mentions
    union all
    select org_key, went_private from answered_mentions
    where org_key in (select org_key from stg_shared_orgs)
),
resolution as (
    select key, count(*) as answered,
           avg((not went_private)::int) as public_resolution_share
    from answered_scoped group by all
),
participation as (
    -- thread_depth: the depth of the post's thread up to as_of (stg_org_posts); an account is on one platform
    select distinct account_key, root_id, thread_depth as depth
    from stg_org_posts
    where thread_depth is not null
      and created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
conv_scoped as (
    select account_key as key, depth from participation
    union all
    -- a thread counts once for the organisation, however many of its accounts took part
    select org_key, depth from (
        select distinct oa.org_key, oa.platform, p.root_id, p.depth
        from participation p join stg_org_accounts oa using (account_key)
        where oa.org_key in (select org_key from stg_shared_orgs))
),
conversations as (
    select key, count(*) as conversations,
           avg(depth) as conversation_depth_mean
    from conv_scoped group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           rs.private_channel_share,
           coalesce(rs.replies, 0) as private_channel_share__n,
           r.public_resolution_share,
           coalesce(r.answered, 0) as public_resolution_share__n,
           rs.multi_turn_share,
           coalesce(rs.replies, 0) as multi_turn_share__n,
           c.conversation_depth_mean,
           coalesce(c.conversations, 0) as conversation_depth_mean__n
    from stg_feature_keys k
    left join reply_stats rs on rs.key = k.stats_key
    left join resolution r on r.key = k.stats_key
    left join conversations c on c.key = k.stats_key
)
select * from final
