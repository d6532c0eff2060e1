-- tokenvault schema version 1: what sled holds, as one key-value table,
-- and the write ids that settle a COMMIT whose answer was lost.
--
-- Keys are bytea: PostgreSQL compares bytea byte by byte, shorter first on
-- a common prefix, exactly as sled orders its keys, so a prefix scan pages
-- in the same order on both backends. Values are what the vault seals or
-- references: ciphertext, keyed fingerprints, counters, audit records.
CREATE TABLE tokenvault_kv (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);

-- One row per committed write: its random id and which batches of the
-- write applied. A writer that lost the answer to its COMMIT looks its id
-- up (after fencing it) before it answers or retries. Rows older than the
-- pruning age are deleted by the store.
CREATE TABLE tokenvault_writes (
    id           bytea PRIMARY KEY,
    applied      bytea,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokenvault_writes_committed_at ON tokenvault_writes (committed_at);
