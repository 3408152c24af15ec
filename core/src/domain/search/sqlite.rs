//! Searches as FTS5 reads them: [`crate::sqlite_rank`] (tickets) and `bm25` (the KB) over the
//! contentless `ticket_fts` / `kb_fts`, whose
//! integer rowids `ticket_search_docs` / `kb_search_docs` map to entity ids (see the search
//! migration).
use sea_orm::{
    ConnectionTrait, DbBackend, QueryTrait, Select, Statement,
    sea_query::{Alias, Asterisk, Expr, Order, Query, SelectStatement},
};

use super::{RANKED, SearchQuery};
use crate::{
    entity::{kb_article, ticket},
    error::Result,
};

/// Prefixes up to this long have an index of their own (the search migration's `prefix='2 3'`):
/// FTS5 reads one entry for them.
const INDEXED_PREFIX_CHARS: usize = 3;

/// A longer prefix that stands for at most this many indexed words is searched as those words.
pub const MAX_PREFIX_WORDS: usize = 32;

/// The search with each longer prefix replaced by the indexed words it stands for, read from
/// the index's vocabulary (`ticket_fts_vocab`). Why: FTS5 answers a prefix without an index of
/// its own by merging the whole lists of every word it stands for, positions included, before
/// returning the first match (31 ms for `rest*` at a million tickets), where a few words ORed
/// are read lazily, newest first, and the walk stops at the [`RANKED`]th match. Prefixes that
/// stand for more words, and ones with letters beyond ASCII (whose case folding is the index's
/// to know), stay prefixes.
pub async fn expand_prefixes(db: &impl ConnectionTrait, query: &SearchQuery) -> Result<SearchQuery> {
    let mut out = query.clone();
    for t in out.terms.iter_mut().filter(|t| t.prefix) {
        let Some(last) = t.words.last() else { continue };
        if last.chars().count() <= INDEXED_PREFIX_CHARS || !last.is_ascii() {
            continue;
        }
        let prefix = last.to_ascii_lowercase();
        // Words hold only letters and digits: the next byte after the last one is ASCII too.
        let mut end = prefix.clone().into_bytes();
        if let Some(b) = end.last_mut() {
            *b += 1;
        }
        let end = String::from_utf8(end).unwrap_or_default();
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT term FROM ticket_fts_vocab WHERE term >= ? AND term < ? LIMIT ?",
                [prefix.clone().into(), end.into(), (MAX_PREFIX_WORDS as i64 + 1).into()],
            ))
            .await?;
        let words: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String>("", "term").ok())
            .filter(|w| w.starts_with(&prefix))
            .collect();
        if !words.is_empty() && words.len() <= MAX_PREFIX_WORDS {
            t.stands_for = words;
        }
    }
    Ok(out)
}

/// The FTS5 columns customers match.
pub const PUBLIC_TICKET_COLUMNS: &[&str] = &["subject", "description", "public_text"];

/// See [`super::ticket_statement`]. The full-text index is read first, newest document first
/// (SQLite keeps the order of a CROSS JOIN, and FTS5 gives rowid order without sorting), the
/// filters applied to its matches, and the walk stops at the [`RANKED`]th that passes them: only
/// those are ranked. (SQLite has no statistics to choose a start by, and would start from any
/// indexed filter, say every open ticket.)
///
/// `narrow`: the filters alone select few tickets (one requester's). Those are read first, and
/// each one's document looked up in the index by rowid: a thousand lookups, where walking the
/// index would read every match of a common word to find the few that are theirs.
pub fn tickets(
    staff: bool,
    narrow: bool,
    filtered: Select<ticket::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> SelectStatement {
    let matched = query.fts5(if staff { None } else { Some(PUBLIC_TICKET_COLUMNS) });
    // Subject, description, public comments, internal notes.
    let score = format!("ticketwire_rank(ticket_fts, 10.0, 4.0, 2.0, {})", if staff { "2.0" } else { "0.0" });
    let mut candidates = filtered.into_query();
    // Newest first. Narrow: by the documents' own column, not the index's rowid, which would
    // have FTS5 walk the word's matches backwards for every lookup.
    let newest = if narrow { "ticket_search_docs.doc_id" } else { "ticket_fts.rowid" };
    if narrow {
        candidates
            .cross_join(Alias::new("ticket_search_docs"))
            .cross_join(Alias::new("ticket_fts"))
            .and_where(Expr::cust("ticket_search_docs.ticket_id = tickets.id"))
            .and_where(Expr::cust("ticket_fts.rowid = ticket_search_docs.doc_id"));
    } else {
        candidates
            .from_clear()
            .from(Alias::new("ticket_fts"))
            .cross_join(Alias::new("ticket_search_docs"))
            .cross_join(ticket::Entity)
            .and_where(Expr::cust("ticket_search_docs.doc_id = ticket_fts.rowid"))
            .and_where(Expr::cust("tickets.id = ticket_search_docs.ticket_id"));
    }
    candidates
        .and_where(Expr::cust_with_values("ticket_fts MATCH ?", [matched.clone()]))
        .expr_as(Expr::cust(score.clone()), Alias::new("score"))
        .order_by_expr(Expr::cust(newest), Order::Desc)
        .limit(RANKED);
    let mut s = Query::select();
    s.column(Asterisk).from_subquery(candidates, Alias::new("matches"));
    if let Some(c) = cursor {
        let after = format!(
            "(matches.score, matches.id) < (SELECT {score}, ? FROM ticket_fts WHERE ticket_fts MATCH ? \
             AND ticket_fts.rowid = (SELECT doc_id FROM ticket_search_docs WHERE ticket_id = ?))"
        );
        s.and_where(Expr::cust_with_values(after, [c.to_string(), matched, c.to_string()]));
    }
    s.order_by_expr(Expr::cust("matches.score"), Order::Desc)
        .order_by_expr(Expr::cust("matches.id"), Order::Desc)
        .limit(limit);
    s
}

/// See [`super::article_statement`]: the full-text index outermost, as for tickets (the KB's
/// filters select many). A KB is small enough to rank every match.
pub fn articles(
    filtered: Select<kb_article::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> SelectStatement {
    let mut s = filtered.into_query();
    let matched = query.fts5(None);
    let score = "-bm25(kb_fts, 3.0, 2.0, 1.0)";
    s.from_clear()
        .from(Alias::new("kb_fts"))
        .cross_join(Alias::new("kb_search_docs"))
        .cross_join(kb_article::Entity)
        .and_where(Expr::cust("kb_search_docs.doc_id = kb_fts.rowid"))
        .and_where(Expr::cust("kb_articles.id = kb_search_docs.article_id"))
        .and_where(Expr::cust_with_values("kb_fts MATCH ?", [matched.clone()]))
        .expr_as(Expr::cust(score), Alias::new("score"));
    if let Some(c) = cursor {
        let after = format!(
            "({score}, kb_articles.id) < (SELECT {score}, ? FROM kb_fts WHERE kb_fts MATCH ? \
             AND kb_fts.rowid = (SELECT doc_id FROM kb_search_docs WHERE article_id = ?))"
        );
        s.and_where(Expr::cust_with_values(after, [c.to_string(), matched, c.to_string()]));
    }
    s.order_by_expr(Expr::cust("score"), Order::Desc)
        .order_by((kb_article::Entity, kb_article::Column::Id), Order::Desc)
        .limit(limit);
    s
}
