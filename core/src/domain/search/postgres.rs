//! Searches as PostgreSQL reads them: `to_tsquery('simple', …)` against the GIN-indexed
//! `ticket_search.doc` / `kb_articles.search_doc`, ranked by `ts_rank`.
use sea_orm::{
    EntityTrait, QueryTrait, Select,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, JoinType, Order, Query, SelectStatement},
};

use super::{RANKED, SearchQuery};
use crate::entity::{kb_article, ticket};

/// `ts_rank` of `doc` against the search in `$1`, with `weights` for {D, C, B, A}.
fn rank(weights: &str, doc: &str) -> String {
    format!("ts_rank('{weights}', {doc}, to_tsquery('simple', $1), 1)::float8")
}

/// See [`super::ticket_statement`]: the newest [`RANKED`] tickets that match and pass the
/// filters are ranked. PostgreSQL picks, by its statistics of the documents' words, whether to
/// walk the tickets newest first checking each document (a common word: it stops early) or to
/// read the GIN index's matches and keep the newest (a rare one).
///
/// The newest matches are found as bare ids and only those ranked: sorting every match with
/// its document (≈ 1.2 KB each) to keep the newest spilled to disk at a word in 1% of a million
/// tickets, and took as long as finding them.
///
/// `after`: only tickets newer than this one (by id) are searched, and each row carries how many
/// were ranked (`pool`); see [`super::tickets`] for when that answer stands. The documents'
/// BRIN index on `ticket_id` lets the GIN index's matches be read on the newest pages only.
pub fn tickets(
    staff: bool,
    filtered: Select<ticket::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
    after: Option<&str>,
) -> SelectStatement {
    let tsq = query.tsquery(if staff { "" } else { "ABC" });
    // {D, C, B, A}: internal notes, public comments, description, subject.
    let weights = if staff { "{0.2,0.2,0.4,1.0}" } else { "{0,0.2,0.4,1.0}" };
    let mut newest = filtered.into_query();
    newest
        .clear_selects()
        .column((ticket::Entity, ticket::Column::Id))
        .join(JoinType::InnerJoin, Alias::new("ticket_search"), Expr::cust("ticket_search.ticket_id = tickets.id"))
        .and_where(Expr::cust_with_values("ticket_search.doc @@ to_tsquery('simple', $1)", [tsq.clone()]))
        .order_by((ticket::Entity, ticket::Column::Id), Order::Desc)
        .limit(RANKED);
    if let Some(after) = after {
        // Both sides: PostgreSQL carries equalities across a join, not ranges.
        newest
            .and_where(Expr::col((ticket::Entity, ticket::Column::Id)).gt(after))
            .and_where(Expr::col((Alias::new("ticket_search"), Alias::new("ticket_id"))).gt(after));
    }
    let mut scored = ticket::Entity::find().into_query();
    scored
        .join(JoinType::InnerJoin, Alias::new("ticket_search"), Expr::cust("ticket_search.ticket_id = tickets.id"))
        .and_where(Expr::col((ticket::Entity, ticket::Column::Id)).in_subquery(newest))
        .expr_as(Expr::cust_with_values(rank(weights, "ticket_search.doc"), [tsq.clone()]), Alias::new("score"));
    if after.is_some() {
        scored.expr_as(Expr::cust("count(*) OVER ()"), Alias::new("pool"));
    }
    let mut s = Query::select();
    s.column(Asterisk).from_subquery(scored, Alias::new("matches"));
    if let Some(c) = cursor {
        let after = format!(
            "(matches.score, matches.id) < (SELECT {}, s.ticket_id FROM ticket_search s \
             WHERE s.ticket_id = $2 AND s.doc @@ to_tsquery('simple', $1))",
            rank(weights, "s.doc")
        );
        s.and_where(Expr::cust_with_values(after, [tsq, c.to_string()]));
    }
    s.order_by_expr(Expr::cust("matches.score"), Order::Desc)
        .order_by_expr(Expr::cust("matches.id"), Order::Desc)
        .limit(limit);
    s
}

/// See [`super::article_statement`]. A KB is small enough to rank every match.
pub fn articles(
    filtered: Select<kb_article::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> SelectStatement {
    let mut s = filtered.into_query();
    let tsq = query.tsquery("");
    // {D, C, B, A}: -, body, tags, title.
    let weights = "{0,0.2,0.4,1.0}";
    s.and_where(Expr::cust_with_values("kb_articles.search_doc @@ to_tsquery('simple', $1)", [tsq.clone()]))
        .expr_as(Expr::cust_with_values(rank(weights, "kb_articles.search_doc"), [tsq.clone()]), Alias::new("score"));
    if let Some(c) = cursor {
        let after = format!(
            "({}, kb_articles.id) < (SELECT {}, a.id FROM kb_articles a \
             WHERE a.id = $2 AND a.search_doc @@ to_tsquery('simple', $1))",
            rank(weights, "kb_articles.search_doc"),
            rank(weights, "a.search_doc")
        );
        s.and_where(Expr::cust_with_values(after, [tsq, c.to_string()]));
    }
    s.order_by_expr(Expr::cust("score"), Order::Desc)
        .order_by((kb_article::Entity, kb_article::Column::Id), Order::Desc)
        .limit(limit);
    s
}
