-- Every estimate records the estimation window it was computed on: history is per (as_of, window),
-- and explain, estimates and the report show both. Earlier rows were estimated on the 90-day window
-- when one was built for their as_of, else on all data (window 0).
create table estimates_windowed (
    run_id          varchar not null,
    as_of           timestamp not null,
    window_days     integer not null,
    org_id          varchar not null,
    model           varchar not null,
    stage           varchar,
    stage_index     integer,
    confidence      double,
    status          varchar not null,
    rule_stage      varchar,
    classifier_stage varchar,
    probabilities   json,
    explanation     json,
    computed_at     timestamp not null,
    primary key (as_of, window_days, org_id, model)
);
insert into estimates_windowed
select e.run_id, e.as_of,
       case when exists (select 1 from features f where f.as_of = e.as_of and f.window_days = 90) then 90 else 0 end,
       e.org_id, e.model, e.stage, e.stage_index, e.confidence, e.status, e.rule_stage, e.classifier_stage,
       e.probabilities, e.explanation, e.computed_at
from estimates e;
drop table estimates;
alter table estimates_windowed rename to estimates;
