-- group: content
-- feature: proactive_share | share | Posts by the account (organisation) in the period that reply to nothing (in_reply_to empty), divided by its posts; the rest is reactive.
-- feature: link_share | share | Posts in the period containing an http(s):// link, divided by posts.
-- feature: media_share | share | Posts in the period carrying media (photo, video), divided by the posts whose source reports media; NULL when none does (twcs files and S&P 500 id files do not: not observed, never 0).
-- feature: hashtag_share | share | Posts in the period with at least one #hashtag (campaign tag), divided by posts.
-- feature: engagement_per_post | interactions/post | Mean of likes (reactions) + reposts (shares) + replies (comments) per post, over the posts in the period for which the source reports at least one of these counts; NULL when none does.
-- feature: customer_to_customer_replies | replies | Posts by non-organisation authors in the period replying to another non-organisation author's post that is addressed to the account (organisation): that post replies to one of its posts, or else @-mentions it (the first organisation account mentioned counts).
with
own as not materialized (
    -- not materialized: a filter of a staging table is cheaper to scan twice than to copy
    select * from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
own_scoped as (
    select account_key as key, in_reply_to, has_link, has_media, has_hashtag,
           like_count, repost_count, reply_count from own
    union all
    select org_key, in_reply_to, has_link, has_media, has_hashtag,
           like_count, repost_count, reply_count from own
    where org_key in (select org_key from stg_shared_orgs)
),
post_stats as (
    select key, count(*) as posts,
           avg((in_reply_to is null)::int) as proactive_share,
           avg(has_link::int) as link_share,
           avg(has_media::int) as media_share,
           count(has_media) as media_reported,
           avg(has_hashtag::int) as hashtag_share,
           avg(coalesce(like_count, 0) + coalesce(repost_count, 0) + coalesce(reply_count, 0)) filter (
               where like_count is not null or repost_count is not null or reply_count is not null)
               as engagement_per_post,
           count(*) filter (
               where like_count is not null or repost_count is not null or reply_count is not null)
               as engaged_posts
    from own_scoped group by all
),
c2c as (
    select oa.account_key, oa.org_key
    from stg_customer_replies c
    join stg_org_accounts oa on oa.platform = c.platform and oa.handle_key = c.account
    where c.created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
),
c2c_stats as (
    select account_key as key, count(*) as c2c from c2c group by all
    union all
    select org_key, count(*) from c2c
    where org_key in (select org_key from stg_shared_orgs) group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           s.proactive_share, coalesce(s.posts, 0) as proactive_share__n,
           s.link_share, coalesce(s.posts, 0) as link_share__n,
           s.media_share, coalesce(s.media_reported, 0) as media_share__n,
           s.hashtag_share, coalesce(s.posts, 0) as hashtag_share__n,
           s.engagement_per_post, coalesce(s.engaged_posts, 0) as engagement_per_post__n,
           coalesce(c.c2c, 0) as customer_to_customer_replies,
           coalesce(c.c2c, 0) as customer_to_customer_replies__n
    from stg_feature_keys k
    left join post_stats s on s.key = k.stats_key
    left join c2c_stats c on c.key = k.stats_key
)
select * from final
