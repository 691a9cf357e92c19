-- What the features read from a post's text is derived at build time by features/text.py from the
-- stored text, so posts keeps only loaded facts. Customers' text is not stored by default: for those
-- posts the question flag the features need stays (dropped_text_is_question, null where the text is
-- stored). Only ALTER statements: DuckDB refuses to commit a transaction that updates a table and
-- then alters it, so the flag is narrowed by the column's USING expression instead of an UPDATE.
-- Non-key columns drop in place despite the primary key (only its own columns could not be dropped).
alter table posts alter column is_question set data type boolean
    using (case when text is null and not is_org_author then is_question end);
alter table posts rename column is_question to dropped_text_is_question;
alter table posts drop column private_channel;
alter table posts drop column has_link;
alter table posts drop column hashtags;
alter table posts drop column signature;
