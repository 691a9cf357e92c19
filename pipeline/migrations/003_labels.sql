-- Analyst maturity labels: first-class training data that survives retraining and regeneration
-- (synthetic data never writes here). The latest label per (org_id, model) counts.
create table labels (
    org_id          varchar not null,
    model           varchar not null,    -- smmm, s3m, forrester, altimeter, smi
    stage           varchar not null,    -- stage name as in models/<model>.toml
    source          varchar not null,    -- cli, csv:<file>, ...
    created_at      timestamp not null
);
