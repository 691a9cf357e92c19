-- One row per pipeline (flow) run with its summary, so run history is queryable next to the data.
create table pipeline_runs (
    run_id          varchar primary key,
    flow            varchar not null,
    started_at      timestamp not null,
    finished_at     timestamp,
    status          varchar not null,    -- ok, partial_failure, failed
    as_of           timestamp,
    summary         json
);
