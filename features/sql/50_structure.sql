-- group: structure
-- feature: accounts | accounts | Accounts of the organisation (configured or assigned in the accounts table), whether active or not; 1 at account scope.
-- feature: department_accounts | accounts | Accounts with a department role (role set and not brand, main or other, e.g. support, marketing, news, careers) that posted at least once in the period.
-- feature: roles_covered | roles | Distinct roles (a missing role counts as 'other') among the accounts that posted at least once in the period.
-- feature: platforms | platforms | Distinct platforms on which the account (organisation) posted at least once in the period: platform breadth.
-- feature: accounts_per_platform | accounts/platform | accounts divided by the distinct platforms of those accounts (active or not).
with
activity as (
    select account_key, count(*) as posts
    from stg_org_posts
    where created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')
    group by all
),
acc as (
    select a.account_key, a.org_key, a.platform, coalesce(lower(a.role), 'other') as role,
           coalesce(x.posts, 0) as posts
    from stg_org_accounts a
    left join activity x using (account_key)
),
scoped as (
    select account_key as key, platform as acc_platform, role, posts from acc
    union all
    select org_key, platform, role, posts from acc where org_key is not null
),
per_key as (
    select key,
           count(*) as accounts,
           count(*) filter (where posts > 0 and role not in ('brand', 'main', 'other')) as department_accounts,
           count(distinct role) filter (where posts > 0) as roles_covered,
           count(distinct acc_platform) filter (where posts > 0) as platforms,
           count(*) / count(distinct acc_platform)::double as accounts_per_platform,
           sum(posts) as posts
    from scoped group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(p.accounts, 0) as accounts,
           coalesce(p.accounts, 0) as accounts__n,
           coalesce(p.department_accounts, 0) as department_accounts,
           coalesce(p.accounts, 0) as department_accounts__n,
           coalesce(p.roles_covered, 0) as roles_covered,
           coalesce(p.accounts, 0) as roles_covered__n,
           coalesce(p.platforms, 0) as platforms,
           coalesce(p.posts, 0) as platforms__n,
           p.accounts_per_platform,
           coalesce(p.accounts, 0) as accounts_per_platform__n
    from stg_feature_keys k
    left join per_key p using (key)
)
select * from final
