-- group: completeness
-- Reads feat_all: every feature of the groups before this one (except trend), long format, for this
-- (as_of, window), built by the runner.
-- feature: completeness | share | How much evidence the feature set rests on: the share of all non-trend features of the account (organisation) that have a value and enough evidence, i.e. an evidence count of at least 5 observations (structure features, which rest on the account list: at least 1). 1 = every feature is supported; 0 = none.
with
judged as (
    select scope, org_id, platform, account,
           value is not null and coalesce(evidence, 0) >= case when grp = 'structure' then 1 else getvariable('min_evidence') end
               as supported
    from feat_all
    where grp <> 'trend'
),
per_key as (
    select scope, org_id, platform, account, avg(supported::int) as completeness, count(*) as features
    from judged group by all
),
final as (
    select k.scope, k.org_id, k.platform, k.account,
           coalesce(p.completeness, 0) as completeness,
           coalesce(p.features, 0) as completeness__n
    from stg_feature_keys k
    left join per_key p using (scope, org_id, platform, account)
)
select * from final
