//! Full-text search over tickets (subject, description, public comments and internal notes, kept
//! apart so that customers match only what they may read) and KB articles (title, tags, body).
//!
//! The index is kept by the database itself, in the transaction of every write that changes
//! what it holds, whichever code path wrote it (the API, group commits, ingestion, deletions):
//!
//! * SQLite: contentless FTS5 tables (`ticket_fts`, `kb_fts`, only the index is stored) kept by
//!   triggers. FTS5 rows are addressed by integer, ids here are UUID strings, so
//!   `ticket_search_docs` / `kb_search_docs` give each entity a stable integer of its own (a
//!   table's implicit rowid could be renumbered by `VACUUM`).
//! * PostgreSQL: one weighted `tsvector` per ticket in `ticket_search` (A subject, B
//!   description, C public comments, D internal notes), GIN-indexed, rewritten by deferred
//!   constraint triggers; and a generated `kb_articles.search_doc`. The triggers run at commit,
//!   when the transaction holds the event-order lock every writer takes before committing, so
//!   two transactions adding comments to one ticket rewrite its document one after the other,
//!   each from a snapshot that holds the other's comment.
//!
//! Both tokenize alike: runs of letters and digits, case-folded, no stemming and no stop words
//! (FTS5 `unicode61`; PostgreSQL's `simple` configuration over the text with everything but
//! letters and digits turned into spaces, so an address or a path splits into words as it does
//! in FTS5). Only the first characters of long texts are indexed (the limits below), which keeps
//! a PostgreSQL document under the 1 MB a `tsvector` may hold whatever the text.
use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// How many characters of each text are indexed.
const SUBJECT_CHARS: usize = 500;
const DESCRIPTION_CHARS: usize = 60_000;
const COMMENTS_CHARS: usize = 40_000;
const TITLE_CHARS: usize = 500;
const TAGS_CHARS: usize = 5_000;
const BODY_CHARS: usize = 100_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let statements = match m.get_database_backend() {
            DatabaseBackend::Postgres => postgres_up(),
            _ => sqlite_up(),
        };
        run(m, statements).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let statements: Vec<String> = match m.get_database_backend() {
            DatabaseBackend::Postgres => [
                "DROP TRIGGER IF EXISTS ticket_search_on_ticket_insert ON tickets",
                "DROP TRIGGER IF EXISTS ticket_search_on_ticket_update ON tickets",
                "DROP TRIGGER IF EXISTS ticket_search_on_ticket_delete ON tickets",
                "DROP TRIGGER IF EXISTS ticket_search_on_comment_insert ON comments",
                "DROP TRIGGER IF EXISTS ticket_search_on_comment_update ON comments",
                "DROP TRIGGER IF EXISTS ticket_search_on_comment_delete ON comments",
                "DROP FUNCTION IF EXISTS ticketwire_ticket_search_trigger()",
                "DROP FUNCTION IF EXISTS ticketwire_ticket_search_refresh(varchar)",
                "DROP TABLE IF EXISTS ticket_search",
                "ALTER TABLE kb_articles DROP COLUMN IF EXISTS search_doc",
                "DROP FUNCTION IF EXISTS ticketwire_search_words(text)",
            ]
            .map(String::from)
            .to_vec(),
            _ => [
                "ticket_search_on_ticket_insert",
                "ticket_search_on_ticket_update",
                "ticket_search_on_ticket_delete",
                "ticket_search_on_comment_insert",
                "ticket_search_on_comment_update",
                "ticket_search_on_comment_delete",
                "kb_search_on_insert",
                "kb_search_on_update",
                "kb_search_on_delete",
            ]
            .iter()
            .map(|t| format!("DROP TRIGGER IF EXISTS {t}"))
            .chain(
                ["ticket_fts", "ticket_search_docs", "kb_fts", "kb_search_docs"]
                    .iter()
                    .map(|t| format!("DROP TABLE IF EXISTS {t}")),
            )
            .collect(),
        };
        run(m, statements).await
    }
}

async fn run(m: &SchemaManager<'_>, statements: Vec<String>) -> Result<(), DbErr> {
    let db = m.get_connection();
    for s in statements {
        db.execute_unprepared(&s).await?;
    }
    Ok(())
}

/// FTS5 options shared by both tables: the tokenizer described above, and prefix indexes so
/// that `ab*` and `abc*` read one index entry instead of every word they begin.
const FTS5_OPTIONS: &str = "content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 0', prefix='2 3'";

/// Writes the FTS5 row of the ticket `id` (an SQL expression) from the ticket and its comments as
/// they are now; writes nothing for a ticket that is gone.
fn sqlite_ticket_refresh(id: &str) -> String {
    let comments = |internal: &str| {
        format!(
            "coalesce((SELECT substr(group_concat(c.content, char(10) ORDER BY c.id), 1, {COMMENTS_CHARS}) \
             FROM comments c WHERE c.ticket_id = t.id AND {internal}c.internal), '')"
        )
    };
    format!(
        "INSERT OR REPLACE INTO ticket_fts(rowid, subject, description, public_text, internal_text) \
         SELECT d.doc_id, substr(t.subject, 1, {SUBJECT_CHARS}), substr(t.description, 1, {DESCRIPTION_CHARS}), {}, {} \
         FROM tickets t JOIN ticket_search_docs d ON d.ticket_id = t.id WHERE t.id = {id}",
        comments("NOT "),
        comments(""),
    )
}

fn sqlite_kb_refresh(id: &str) -> String {
    format!(
        "INSERT OR REPLACE INTO kb_fts(rowid, title, tags, body) \
         SELECT d.doc_id, substr(a.title, 1, {TITLE_CHARS}), substr(a.tags, 1, {TAGS_CHARS}), substr(a.body, 1, {BODY_CHARS}) \
         FROM kb_articles a JOIN kb_search_docs d ON d.article_id = a.id WHERE a.id = {id}"
    )
}

fn sqlite_up() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS ticket_search_docs (doc_id INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL UNIQUE)"
            .into(),
        format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS ticket_fts USING fts5(subject, description, public_text, internal_text, {FTS5_OPTIONS})"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS ticket_search_on_ticket_insert AFTER INSERT ON tickets BEGIN \
             INSERT OR IGNORE INTO ticket_search_docs(ticket_id) VALUES (NEW.id); {}; END",
            sqlite_ticket_refresh("NEW.id")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS ticket_search_on_ticket_update AFTER UPDATE OF subject, description ON tickets \
             WHEN OLD.subject IS NOT NEW.subject OR OLD.description IS NOT NEW.description BEGIN {}; END",
            sqlite_ticket_refresh("NEW.id")
        ),
        "CREATE TRIGGER IF NOT EXISTS ticket_search_on_ticket_delete AFTER DELETE ON tickets BEGIN \
         DELETE FROM ticket_fts WHERE rowid = (SELECT doc_id FROM ticket_search_docs WHERE ticket_id = OLD.id); \
         DELETE FROM ticket_search_docs WHERE ticket_id = OLD.id; END"
            .into(),
        format!(
            "CREATE TRIGGER IF NOT EXISTS ticket_search_on_comment_insert AFTER INSERT ON comments BEGIN {}; END",
            sqlite_ticket_refresh("NEW.ticket_id")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS ticket_search_on_comment_update AFTER UPDATE OF content, internal, ticket_id ON comments \
             WHEN OLD.content IS NOT NEW.content OR OLD.internal IS NOT NEW.internal OR OLD.ticket_id IS NOT NEW.ticket_id \
             BEGIN {}; {}; END",
            sqlite_ticket_refresh("OLD.ticket_id"),
            sqlite_ticket_refresh("NEW.ticket_id")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS ticket_search_on_comment_delete AFTER DELETE ON comments BEGIN {}; END",
            sqlite_ticket_refresh("OLD.ticket_id")
        ),
        // What was written before this migration.
        "INSERT OR IGNORE INTO ticket_search_docs(ticket_id) SELECT id FROM tickets ORDER BY id".into(),
        sqlite_ticket_refresh("t.id"),
        "CREATE TABLE IF NOT EXISTS kb_search_docs (doc_id INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE)"
            .into(),
        format!("CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(title, tags, body, {FTS5_OPTIONS})"),
        format!(
            "CREATE TRIGGER IF NOT EXISTS kb_search_on_insert AFTER INSERT ON kb_articles BEGIN \
             INSERT OR IGNORE INTO kb_search_docs(article_id) VALUES (NEW.id); {}; END",
            sqlite_kb_refresh("NEW.id")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS kb_search_on_update AFTER UPDATE OF title, tags, body ON kb_articles \
             WHEN OLD.title IS NOT NEW.title OR OLD.tags IS NOT NEW.tags OR OLD.body IS NOT NEW.body BEGIN {}; END",
            sqlite_kb_refresh("NEW.id")
        ),
        "CREATE TRIGGER IF NOT EXISTS kb_search_on_delete AFTER DELETE ON kb_articles BEGIN \
         DELETE FROM kb_fts WHERE rowid = (SELECT doc_id FROM kb_search_docs WHERE article_id = OLD.id); \
         DELETE FROM kb_search_docs WHERE article_id = OLD.id; END"
            .into(),
        "INSERT OR IGNORE INTO kb_search_docs(article_id) SELECT id FROM kb_articles ORDER BY id".into(),
        sqlite_kb_refresh("a.id"),
    ]
}

/// The weighted document of the tickets `t` of a query (lateral `c`: their comments' texts).
fn postgres_ticket_doc() -> String {
    let part = |text: &str, chars: usize, weight: char| {
        format!("setweight(to_tsvector('simple', ticketwire_search_words(left({text}, {chars}))), '{weight}')")
    };
    [
        part("t.subject", SUBJECT_CHARS, 'A'),
        part("t.description", DESCRIPTION_CHARS, 'B'),
        part("c.public_text", COMMENTS_CHARS, 'C'),
        part("c.internal_text", COMMENTS_CHARS, 'D'),
    ]
    .join(" || ")
}

const POSTGRES_COMMENT_TEXTS: &str = "CROSS JOIN LATERAL (SELECT \
     string_agg(content, E'\\n' ORDER BY id) FILTER (WHERE NOT internal) AS public_text, \
     string_agg(content, E'\\n' ORDER BY id) FILTER (WHERE internal) AS internal_text \
     FROM comments WHERE comments.ticket_id = t.id) c";

fn postgres_up() -> Vec<String> {
    let doc = postgres_ticket_doc();
    let kb_part = |text: &str, chars: usize, weight: char| {
        format!(
            "setweight(to_tsvector('simple'::regconfig, ticketwire_search_words(left({text}, {chars}))), '{weight}')"
        )
    };
    let kb_doc =
        [kb_part("title", TITLE_CHARS, 'A'), kb_part("tags::text", TAGS_CHARS, 'B'), kb_part("body", BODY_CHARS, 'C')]
            .join(" || ");
    let ticket_trigger = |name: &str, event: &str, when: &str| {
        format!(
            "CREATE CONSTRAINT TRIGGER {name} AFTER {event} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {when} \
             EXECUTE FUNCTION ticketwire_ticket_search_trigger()"
        )
    };
    vec![
        "CREATE OR REPLACE FUNCTION ticketwire_search_words(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE \
         AS $$ SELECT regexp_replace(coalesce(t, ''), '[^[:alnum:]]+', ' ', 'g') $$"
            .into(),
        "CREATE TABLE IF NOT EXISTS ticket_search (ticket_id varchar(36) PRIMARY KEY, doc tsvector NOT NULL)".into(),
        "CREATE INDEX IF NOT EXISTS idx_ticket_search_doc ON ticket_search USING gin (doc)".into(),
        format!(
            "CREATE OR REPLACE FUNCTION ticketwire_ticket_search_refresh(tid varchar) RETURNS void LANGUAGE plpgsql AS $$ \
             BEGIN \
               DELETE FROM ticket_search WHERE ticket_id = tid AND NOT EXISTS (SELECT 1 FROM tickets WHERE id = tid); \
               INSERT INTO ticket_search(ticket_id, doc) SELECT t.id, {doc} FROM tickets t {POSTGRES_COMMENT_TEXTS} \
               WHERE t.id = tid ON CONFLICT (ticket_id) DO UPDATE SET doc = EXCLUDED.doc; \
             END $$"
        ),
        "CREATE OR REPLACE FUNCTION ticketwire_ticket_search_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF TG_TABLE_NAME = 'tickets' THEN \
             IF TG_OP = 'DELETE' THEN PERFORM ticketwire_ticket_search_refresh(OLD.id); \
             ELSE PERFORM ticketwire_ticket_search_refresh(NEW.id); END IF; \
           ELSE \
             IF TG_OP <> 'INSERT' THEN PERFORM ticketwire_ticket_search_refresh(OLD.ticket_id); END IF; \
             IF TG_OP = 'INSERT' THEN PERFORM ticketwire_ticket_search_refresh(NEW.ticket_id); \
             ELSIF TG_OP = 'UPDATE' THEN \
               IF NEW.ticket_id IS DISTINCT FROM OLD.ticket_id THEN \
                 PERFORM ticketwire_ticket_search_refresh(NEW.ticket_id); \
               END IF; \
             END IF; \
           END IF; \
           RETURN NULL; \
         END $$"
            .into(),
        ticket_trigger("ticket_search_on_ticket_insert", "INSERT ON tickets", ""),
        ticket_trigger(
            "ticket_search_on_ticket_update",
            "UPDATE OF subject, description ON tickets",
            "WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.description IS DISTINCT FROM NEW.description)",
        ),
        ticket_trigger("ticket_search_on_ticket_delete", "DELETE ON tickets", ""),
        ticket_trigger("ticket_search_on_comment_insert", "INSERT ON comments", ""),
        ticket_trigger(
            "ticket_search_on_comment_update",
            "UPDATE OF content, internal, ticket_id ON comments",
            "WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.internal IS DISTINCT FROM NEW.internal \
             OR OLD.ticket_id IS DISTINCT FROM NEW.ticket_id)",
        ),
        ticket_trigger("ticket_search_on_comment_delete", "DELETE ON comments", ""),
        // What was written before this migration.
        format!(
            "INSERT INTO ticket_search(ticket_id, doc) SELECT t.id, {doc} FROM tickets t {POSTGRES_COMMENT_TEXTS} \
             ON CONFLICT (ticket_id) DO NOTHING"
        ),
        format!(
            "ALTER TABLE kb_articles ADD COLUMN IF NOT EXISTS search_doc tsvector GENERATED ALWAYS AS ({kb_doc}) STORED"
        ),
        "CREATE INDEX IF NOT EXISTS idx_kb_articles_search_doc ON kb_articles USING gin (search_doc)".into(),
    ]
}
