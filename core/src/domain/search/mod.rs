//! Full-text search of tickets and KB articles: one query language, read here and written out
//! for SQLite's FTS5 or PostgreSQL's `tsquery`, ranked by the database (`ticketwire_rank` for
//! tickets and `bm25` for the KB on SQLite, `ts_rank` on PostgreSQL), with
//! highlights made here from the texts the reader may see.
//!
//! The language: words are ANDed; `"a quoted phrase"` matches those words in a row; `-word` or
//! `-"a phrase"` excludes; `word*` matches words starting so (two letters at least). A word is a
//! run of letters and digits, as the index sees it (see the search migration): anything else in
//! a search separates words, so `foo-bar` or `a.b@example.com` are phrases, and nothing typed
//! can be read by the database as its own syntax. Case does not matter; there is no stemming.
//!
//! Customers match only what they may read: the subject, the description and public comments
//! of their own tickets, never internal notes (FTS5 column filter; `tsquery` weight labels).
//!
//! A word that most tickets hold would have the database rank most of them for one page, so a
//! ticket search ranks the [`RANKED`] newest tickets that match it and pass the list's filters
//! (their order found by walking the index newest first, which stops there): older matches are
//! reached by narrowing the search, with more words or a filter. Up to that many, every match is
//! ranked, as before; the KB is small and always ranked whole.
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QueryResult,
    Select, Statement, TransactionSession, TransactionTrait,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Page, PageQuery, kb::Article, tickets::Ticket};
use crate::{
    auth::AuthUser,
    config::SearchConfig,
    entity::{comment, kb_article, ticket},
    error::{Error, Result},
};

mod postgres;
mod query;
mod sqlite;

pub use query::{MAX_QUERY_CHARS, MAX_WORD_CHARS, MAX_WORDS, MIN_PREFIX_CHARS, SearchQuery, Term, words};
use query::{invalid, opening};

/// How many of the newest matching tickets a search ranks.
pub const RANKED: u64 = 1000;

/// Where a search matched a ticket, as HTML safe to render: everything is escaped but the
/// `<mark>…</mark>` around matched words.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct TicketHighlight {
    /// The whole subject.
    pub subject: String,
    /// A passage around the first match in the description or a comment the reader may see
    /// (`…` where cut); the start of the description when only the subject matched.
    pub snippet: String,
    /// What `snippet` is from: `description`, `comment` or `internal_note` (staff only).
    pub snippet_from: String,
    /// The comment `snippet` is from.
    pub comment_id: Option<String>,
}

/// A ticket in a list; in answers to a search, with its score and highlight.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketHit {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// How well it matches the search, higher first; comparable within one answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highlight: Option<TicketHighlight>,
}

impl From<Ticket> for TicketHit {
    fn from(ticket: Ticket) -> Self {
        Self { ticket, score: None, highlight: None }
    }
}

/// Where a search matched an article, as HTML like [`TicketHighlight`].
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ArticleHighlight {
    pub title: String,
    /// A passage around the first match in the body; its start when only the title or tags
    /// matched.
    pub snippet: String,
}

/// An article in a list; in answers to a search, with its score and highlight.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArticleHit {
    #[serde(flatten)]
    pub article: Article,
    /// How well it matches the search, higher first; comparable within one answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highlight: Option<ArticleHighlight>,
}

impl From<Article> for ArticleHit {
    fn from(article: Article) -> Self {
        Self { article, score: None, highlight: None }
    }
}

/// A row of a ranked search: the entity and its score, and (searching the newest tickets
/// first) how many were ranked.
struct Scored<M> {
    model: M,
    score: f64,
    pool: Option<i64>,
}

impl<M: FromQueryResult> FromQueryResult for Scored<M> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            model: M::from_query_result(res, pre)?,
            score: res.try_get(pre, "score")?,
            pool: res.try_get(pre, "pool").ok(),
        })
    }
}

/// One page of the tickets `filtered` (the list's own filters, the reader's visibility
/// included) that match `query`, best first among the [`RANKED`] newest that do, after the
/// ticket `cursor` (the last of the page before). Keyset on (score, id): the cursor ticket's
/// score is recomputed in the same statement, so a page follows on exactly from the one before
/// while the texts stay as they were; an edit in between can move a ticket across the page
/// boundary, as in any ranking.
///
/// `narrow`: the filters alone select few tickets (one requester's), which SQLite then reads
/// first (see [`sqlite::tickets`]); PostgreSQL chooses by its statistics.
pub fn ticket_statement(
    backend: DbBackend,
    staff: bool,
    narrow: bool,
    filtered: Select<ticket::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> Statement {
    let s = match backend {
        DbBackend::Postgres => postgres::tickets(staff, filtered, query, cursor, limit, None),
        _ => sqlite::tickets(staff, narrow, filtered, query, cursor, limit),
    };
    backend.build(&s)
}

/// The KB counterpart of [`ticket_statement`] (title, tags and body; drafts are left out by
/// `filtered` for readers who may not see them), every match ranked.
pub fn article_statement(
    backend: DbBackend,
    filtered: Select<kb_article::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> Statement {
    let s = match backend {
        DbBackend::Postgres => postgres::articles(filtered, query, cursor, limit),
        _ => sqlite::articles(filtered, query, cursor, limit),
    };
    backend.build(&s)
}

/// A search the database refused to read is the caller's: 422, never 500. (Nothing typed
/// reaches it as syntax, so this guards against the unforeseen.)
fn refused(e: DbErr) -> Error {
    let text = e.to_string();
    if text.contains("fts5") || text.contains("tsquery") { invalid("could not be read as a search") } else { e.into() }
}

/// One page of a ticket search for `who` (see [`ticket_statement`]).
///
/// On PostgreSQL, unless the filters alone are narrow, the search looks among the newest
/// `settings.window_tickets` tickets first: when they hold [`RANKED`] matches, those are the
/// newest [`RANKED`] of all, and the answer; otherwise it searches them all. A word in 1% of a
/// million tickets has ≈ 2,000 matches there instead of 10,000 to read.
pub async fn tickets(
    db: &(impl ConnectionTrait + TransactionTrait),
    settings: &SearchConfig,
    who: &AuthUser,
    filtered: Select<ticket::Entity>,
    narrow: bool,
    query: &SearchQuery,
    page: &PageQuery,
) -> Result<Page<TicketHit>> {
    let limit = page.limit()?;
    let backend = db.get_database_backend();
    let expanded = match backend {
        DbBackend::Sqlite => Some(sqlite::expand_prefixes(db, query).await?),
        _ => None,
    };
    let matched = expanded.as_ref().unwrap_or(query);
    let (staff, cursor) = (who.is_staff(), page.cursor()?);
    let answered = match backend {
        DbBackend::Postgres if !narrow => {
            among_newest(db, settings.window_tickets, staff, &filtered, matched, cursor, limit + 1).await?
        }
        _ => None,
    };
    let rows = match answered {
        Some(rows) => rows,
        None => ranked(db, ticket_statement(backend, staff, narrow, filtered, matched, cursor, limit + 1)).await?,
    };
    let views: Vec<Ticket> = rows.iter().map(|r| Ticket::from(r.model.clone()).seen_by(who)).collect();
    let comments = comments_of(db, who, query, &rows).await?;
    let hits: Vec<TicketHit> = rows
        .into_iter()
        .zip(views)
        .map(|(row, ticket)| {
            let on_it = comments.get(&row.model.id).map_or(&[][..], Vec::as_slice);
            let highlight = ticket_highlight(query, &row.model, on_it);
            TicketHit { ticket, score: Some(row.score), highlight: Some(highlight) }
        })
        .collect();
    Ok(Page::from_rows(hits, limit, |h| h.ticket.id.clone(), |h| h))
}

/// The rows of a ranked ticket search. On PostgreSQL, planned for the words searched each time:
/// after a few runs of a prepared statement PostgreSQL may keep one plan for any value, and a
/// plan made without knowing the words cannot tell a word in every ticket (walk the newest
/// tickets, stop at the bound) from a rare one (read the GIN index's few matches); the wrong one
/// costs ×25 at 100,000 tickets. And priced for a disk that seeks fast (`random_page_cost`
/// 1.1, the usual value for SSDs, against the default's 4 for spinning disks): at the default,
/// a word in 1% of a million tickets was planned as a walk of the newest tickets checking each
/// document (≈ 100,000 of them) rather than as the GIN index's 10,000 matches.
async fn ranked(
    db: &(impl ConnectionTrait + TransactionTrait),
    statement: Statement,
) -> Result<Vec<Scored<ticket::Model>>> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Scored::find_by_statement(statement).all(db).await.map_err(refused);
    }
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL random_page_cost = 1.1").await?;
    let rows = Scored::find_by_statement(statement).all(&txn).await.map_err(refused)?;
    txn.commit().await?;
    Ok(rows)
}

/// PostgreSQL: the page among the newest `window` tickets, when they hold [`RANKED`] matches
/// (then the newest [`RANKED`] of all are theirs); `None` when the search must read all tickets.
async fn among_newest(
    db: &(impl ConnectionTrait + TransactionTrait),
    window: u64,
    staff: bool,
    filtered: &Select<ticket::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> Result<Option<Vec<Scored<ticket::Model>>>> {
    let Some(after) = window_start(db, window).await? else { return Ok(None) };
    let s = postgres::tickets(staff, filtered.clone(), query, cursor, limit, Some(&after));
    let rows = ranked(db, DbBackend::Postgres.build(&s)).await?;
    // An empty page says nothing of the window (the cursor may be past its matches).
    Ok(rows.first().is_some_and(|r| r.pool.is_some_and(|n| n >= RANKED as i64)).then_some(rows))
}

/// The newest ticket outside the newest `size` (by number: the single writer numbers tickets
/// as they come), from which a search window starts; `None` while there are no more than that.
async fn window_start(db: &impl ConnectionTrait, size: u64) -> Result<Option<String>> {
    if size == 0 {
        return Ok(None);
    }
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id FROM tickets WHERE number <= (SELECT max(number) FROM tickets) - $1 ORDER BY number DESC LIMIT 1",
        [i64::try_from(size).unwrap_or(i64::MAX).into()],
    );
    match db.query_one_raw(statement).await? {
        Some(row) => Ok(Some(row.try_get("", "id")?)),
        None => Ok(None),
    }
}

/// The comments `who` may read on tickets whose description does not match, oldest first:
/// what their snippets may come from.
async fn comments_of(
    db: &impl ConnectionTrait,
    who: &AuthUser,
    query: &SearchQuery,
    rows: &[Scored<ticket::Model>],
) -> Result<HashMap<String, Vec<comment::Model>>> {
    let mut out: HashMap<String, Vec<comment::Model>> = HashMap::new();
    let ids: Vec<String> =
        rows.iter().filter(|r| query.snippet(&r.model.description).is_none()).map(|r| r.model.id.clone()).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut query =
        comment::Entity::find().filter(comment::Column::TicketId.is_in(ids)).order_by_asc(comment::Column::Id);
    if !who.is_staff() {
        query = query.filter(comment::Column::Internal.eq(false));
    }
    for c in query.all(db).await? {
        out.entry(c.ticket_id.clone()).or_default().push(c);
    }
    Ok(out)
}

fn ticket_highlight(query: &SearchQuery, t: &ticket::Model, comments: &[comment::Model]) -> TicketHighlight {
    let subject = query.highlight(&t.subject);
    let from_description = || {
        query.snippet(&t.description).map(|snippet| TicketHighlight {
            subject: subject.clone(),
            snippet,
            snippet_from: "description".into(),
            comment_id: None,
        })
    };
    let from_comment = || {
        comments.iter().find_map(|c| {
            query.snippet(&c.content).map(|snippet| TicketHighlight {
                subject: subject.clone(),
                snippet,
                snippet_from: if c.internal { "internal_note" } else { "comment" }.into(),
                comment_id: Some(c.id.clone()),
            })
        })
    };
    from_description().or_else(from_comment).unwrap_or_else(|| TicketHighlight {
        subject: subject.clone(),
        snippet: opening(&t.description),
        snippet_from: "description".into(),
        comment_id: None,
    })
}

/// One page of an article search (see [`article_statement`]).
pub async fn articles(
    db: &impl ConnectionTrait,
    filtered: Select<kb_article::Entity>,
    query: &SearchQuery,
    page: &PageQuery,
) -> Result<Page<ArticleHit>> {
    let limit = page.limit()?;
    let statement = article_statement(db.get_database_backend(), filtered, query, page.cursor()?, limit + 1);
    let rows = Scored::<kb_article::Model>::find_by_statement(statement).all(db).await.map_err(refused)?;
    Ok(Page::from_rows(
        rows,
        limit,
        |r| r.model.id.clone(),
        |r| {
            let highlight = ArticleHighlight {
                title: query.highlight(&r.model.title),
                snippet: query.snippet(&r.model.body).unwrap_or_else(|| opening(&r.model.body)),
            };
            ArticleHit { article: Article::from(r.model), score: Some(r.score), highlight: Some(highlight) }
        },
    ))
}
