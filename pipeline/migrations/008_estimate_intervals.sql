-- An estimate is a point or an interval of stages: the lowest and highest stage the evidence supports
-- (models/rules.py), and the stages still possible between them ('|'-separated: for the SMI quadrants the
-- set need not be contiguous). Earlier estimates were points: low = high = their stage.
create table estimates_intervals (
    run_id          varchar not null,
    as_of           timestamp not null,
    window_days     integer not null,
    org_id          varchar not null,
    model           varchar not null,
    stage           varchar,
    stage_index     integer,
    stage_low_index integer,
    stage_high_index integer,
    stages_possible varchar,
    confidence      double,
    status          varchar not null,    -- ok (a point), interval, insufficient_evidence
    rule_stage      varchar,
    classifier_stage varchar,
    probabilities   json,
    explanation     json,
    computed_at     timestamp not null,
    primary key (as_of, window_days, org_id, model)
);
insert into estimates_intervals
select run_id, as_of, window_days, org_id, model, stage, stage_index, stage_index, stage_index, stage, confidence, status,
       rule_stage, classifier_stage, probabilities, explanation, computed_at
from estimates;
drop table estimates;
alter table estimates_intervals rename to estimates;
