-- The posts table without its primary key. Its index made every load pay for every stored post: each
-- batch's insert walks an index of all stored keys, which grows with the store (a microbenchmark of
-- 40 batches of 122,880 keys, one thread, 1000 MB: 52.9 s with the index, 24.0 s without; the 10M
-- benchmark import 210 -> 152 s). Store.load_posts is the one writer of posts and the single-writer
-- lock holds it to one process: a batch keeps the last row of a repeated key, updates the keys already
-- stored and inserts only the others, in one transaction, so a key is never stored twice
-- (tests/test_store.py).
create table posts_unindexed (
    platform                 varchar not null,
    post_id                  varchar not null,
    author                   varchar not null,
    author_key               varchar not null,  -- lower(author), the matching key
    is_org_author            boolean not null,
    created_at               timestamp not null,
    in_reply_to              varchar,
    conversation_id          varchar,
    text                     varchar,           -- kept for organisation authors; customers' text only on request
    mentions                 varchar[],         -- pseudonymised @handles in text order (derived at load)
    dropped_text_is_question boolean,           -- the question flag of a post whose text is not stored
    has_media                boolean,           -- null where the source does not report media
    like_count               bigint,
    repost_count             bigint,
    reply_count              bigint,
    source                   varchar not null,
    ingest_run_id            bigint,
    loaded_at                timestamp not null
);
insert into posts_unindexed select * from posts;
drop table posts;
alter table posts_unindexed rename to posts;
