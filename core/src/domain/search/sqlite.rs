//! Searches as FTS5 reads them: [`crate::sqlite_rank`] (tickets) and `bm25` (the KB) over the
//! contentless `ticket_fts` / `kb_fts`, whose
//! integer rowids `ticket_search_docs` / `kb_search_docs` map to entity ids (see the search
//! migration).
use sea_orm::{
    QueryTrait, Select,
    sea_query::{Alias, Asterisk, Expr, Order, Query, SelectStatement},
};

use super::{RANKED, SearchQuery};
use crate::entity::{kb_article, ticket};

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
