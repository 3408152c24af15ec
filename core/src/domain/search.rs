//! Full-text search of tickets and KB articles: one query language, read here and written out
//! for SQLite's FTS5 or PostgreSQL's `tsquery`, ranked by the database (bm25, `ts_rank`), with
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
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QueryResult,
    QueryTrait, Select, Statement,
    sea_query::{Alias, Expr, JoinType, Order},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Page, PageQuery, kb::Article, tickets::Ticket};
use crate::{
    auth::AuthUser,
    entity::{comment, kb_article, ticket},
    error::{Error, Result},
};

/// Longest search, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most words in one search (those of phrases and exclusions included).
pub const MAX_WORDS: usize = 32;
/// Longest word, in characters.
pub const MAX_WORD_CHARS: usize = 100;
/// Shortest prefix: shorter ones would read a large part of the index.
pub const MIN_PREFIX_CHARS: usize = 2;

/// One term of a search: a word (one token) or a phrase, its last word a prefix or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
    pub excluded: bool,
}

/// A parsed search: at least one term that is not excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
}

/// The words of `text` as the index cuts them: runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.char_indices()
        .filter(|(i, c)| c.is_alphanumeric() && !text[..*i].chars().next_back().is_some_and(char::is_alphanumeric))
        .map(move |(start, _)| {
            let len = text[start..].find(|c: char| !c.is_alphanumeric()).unwrap_or(text.len() - start);
            (start, &text[start..start + len])
        })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::validation("q", message)
}

impl SearchQuery {
    /// Reads a search. `Ok(None)`: it holds no word at all, so nothing can match it.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(format!("a search has at most {MAX_QUERY_CHARS} characters")));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut terms = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let excluded = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
            if excluded {
                i += 1;
            }
            let (body, prefix): (String, bool) = if chars[i] == '"' {
                let start = i + 1;
                let end = chars[start..].iter().position(|&c| c == '"').map_or(chars.len(), |p| start + p);
                i = (end + 1).min(chars.len());
                let prefix = chars.get(i) == Some(&'*');
                if prefix {
                    i += 1;
                }
                (chars[start..end].iter().collect(), prefix)
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                (chars[start..i].iter().collect(), chars[i - 1] == '*')
            };
            let words: Vec<String> = words(&body).map(|(_, w)| w.to_string()).collect();
            if !words.is_empty() {
                terms.push(Term { words, prefix, excluded });
            }
        }
        if terms.is_empty() {
            return Ok(None);
        }
        if terms.iter().map(|t| t.words.len()).sum::<usize>() > MAX_WORDS {
            return Err(invalid(format!("a search has at most {MAX_WORDS} words")));
        }
        if terms.iter().flat_map(|t| &t.words).any(|w| w.chars().count() > MAX_WORD_CHARS) {
            return Err(invalid(format!("a word has at most {MAX_WORD_CHARS} characters")));
        }
        let short_prefix = |t: &Term| t.prefix && t.words.last().is_some_and(|w| w.chars().count() < MIN_PREFIX_CHARS);
        if terms.iter().any(short_prefix) {
            return Err(invalid(format!("a prefix (word*) has at least {MIN_PREFIX_CHARS} letters")));
        }
        if terms.iter().all(|t| t.excluded) {
            return Err(invalid("a search needs a word to look for, not only words to exclude"));
        }
        Ok(Some(Self { terms }))
    }

    fn wanted(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.excluded)
    }

    fn excluded(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.excluded)
    }

    /// The FTS5 `MATCH` expression, over `columns` only when given. Every word is quoted, so
    /// FTS5 reads none as an operator.
    pub fn fts5(&self, columns: Option<&[&str]>) -> String {
        let term = |t: &Term| format!("\"{}\"{}", t.words.join(" "), if t.prefix { " *" } else { "" });
        let wanted: Vec<String> = self.wanted().map(term).collect();
        let mut expr = format!("({})", wanted.join(" AND "));
        for t in self.excluded() {
            expr = format!("{expr} NOT {}", term(t));
        }
        match columns {
            Some(columns) => format!("{{{}}} : ({expr})", columns.join(" ")),
            None => expr,
        }
    }

    /// The `to_tsquery('simple', …)` text, each word restricted to the weight labels `weights`
    /// when not empty. Words hold only letters and digits, so quoting them is enough.
    pub fn tsquery(&self, weights: &str) -> String {
        let term = |t: &Term| {
            let n = t.words.len();
            let words: Vec<String> = t
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let label = format!("{}{weights}", if t.prefix && i + 1 == n { "*" } else { "" });
                    if label.is_empty() { format!("'{w}'") } else { format!("'{w}':{label}") }
                })
                .collect();
            let phrase = if n > 1 { format!("({})", words.join(" <-> ")) } else { words.join("") };
            if t.excluded { format!("!{phrase}") } else { phrase }
        };
        self.terms.iter().map(term).collect::<Vec<_>>().join(" & ")
    }

    /// Which words of `text` this search matches (excluded terms mark nothing), by position in
    /// [`words`].
    fn marks(&self, text: &str) -> (Vec<(usize, usize)>, Vec<bool>) {
        let spans: Vec<(usize, usize)> = words(text).map(|(s, w)| (s, s + w.len())).collect();
        let lower: Vec<String> = spans.iter().map(|&(s, e)| text[s..e].to_lowercase()).collect();
        let mut marked = vec![false; spans.len()];
        for t in self.wanted() {
            let want: Vec<String> = t.words.iter().map(|w| w.to_lowercase()).collect();
            let n = want.len();
            for i in 0..lower.len().saturating_sub(n - 1) {
                let hit = (0..n).all(|k| {
                    let (doc, w) = (&lower[i + k], &want[k]);
                    if t.prefix && k + 1 == n { doc.starts_with(w.as_str()) } else { doc == w }
                });
                if hit {
                    marked[i..i + n].iter_mut().for_each(|m| *m = true);
                }
            }
        }
        (spans, marked)
    }

    /// All of `text` as HTML: escaped, each matched word in `<mark>…</mark>`.
    pub fn highlight(&self, text: &str) -> String {
        let (spans, marked) = self.marks(text);
        render(text, 0, text.len(), &spans, &marked)
    }

    /// A passage of `text` around its first match, as HTML like [`Self::highlight`], with `…`
    /// where cut; `None` when nothing in it matches.
    pub fn snippet(&self, text: &str) -> Option<String> {
        let (spans, marked) = self.marks(text);
        let first = marked.iter().position(|&m| m)?;
        Some(passage(text, &spans, &marked, first))
    }
}

/// About how long a snippet is, in characters.
const SNIPPET_CHARS: usize = 200;
/// Words shown before the first match.
const SNIPPET_LEAD_WORDS: usize = 6;

fn passage(text: &str, spans: &[(usize, usize)], marked: &[bool], first: usize) -> String {
    let start = if first <= SNIPPET_LEAD_WORDS { 0 } else { spans[first - SNIPPET_LEAD_WORDS].0 };
    let budget_end = text[start..].char_indices().nth(SNIPPET_CHARS).map_or(text.len(), |(i, _)| start + i);
    // End on a whole word, and never before the end of the first match.
    let end = if budget_end == text.len() {
        text.len()
    } else {
        spans.iter().map(|&(_, e)| e).filter(|&e| e <= budget_end).max().unwrap_or(budget_end).max(spans[first].1)
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(render(text, start, end, spans, marked).trim());
    if end < text.len() {
        out.push('…');
    }
    out
}

/// `text[start..end]` escaped, with the marked words of it in `<mark>`.
fn render(text: &str, start: usize, end: usize, spans: &[(usize, usize)], marked: &[bool]) -> String {
    let mut out = String::with_capacity(end - start + 16);
    let mut at = start;
    for (&(s, e), _) in spans.iter().zip(marked).filter(|&(&(s, e), &m)| m && s >= start && e <= end) {
        escape_into(&mut out, &text[at..s]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[s..e]);
        out.push_str("</mark>");
        at = e;
    }
    escape_into(&mut out, &text[at..end]);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The start of `text` as a snippet with nothing marked.
fn opening(text: &str) -> String {
    let spans: Vec<(usize, usize)> = words(text).map(|(s, w)| (s, s + w.len())).collect();
    if spans.is_empty() {
        return String::new();
    }
    passage(text, &spans, &vec![false; spans.len()], 0)
}

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

/// A row of a ranked search: the entity and its score.
struct Scored<M> {
    model: M,
    score: f64,
}

impl<M: FromQueryResult> FromQueryResult for Scored<M> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Self { model: M::from_query_result(res, pre)?, score: res.try_get(pre, "score")? })
    }
}

/// The FTS5 columns customers match.
const PUBLIC_TICKET_COLUMNS: &[&str] = &["subject", "description", "public_text"];

/// One page of the tickets `filtered` (the list's own filters, the reader's visibility
/// included) that match `query`, best first, after the ticket `cursor` (the last of the page
/// before). Keyset on (score, id): the cursor ticket's score is recomputed in the same
/// statement, so a page follows on exactly from the one before while the texts stay as they
/// were; an edit in between can move a ticket across the page boundary, as in any ranking.
///
/// `narrow`: the filters alone select few tickets (one requester's). SQLite then reads those
/// and looks each up in the full-text index; otherwise the full-text index is read first and
/// the filters applied to its matches (SQLite has no statistics to choose by, and would start
/// from any indexed filter, say every open ticket).
pub fn ticket_statement(
    backend: DbBackend,
    staff: bool,
    narrow: bool,
    filtered: Select<ticket::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> Statement {
    let mut s = filtered.into_query();
    match backend {
        DbBackend::Postgres => {
            let tsq = query.tsquery(if staff { "" } else { "ABC" });
            // {D, C, B, A}: internal notes, public comments, description, subject.
            let weights = if staff { "{0.2,0.2,0.4,1.0}" } else { "{0,0.2,0.4,1.0}" };
            let rank = |doc: &str| format!("ts_rank('{weights}', {doc}, to_tsquery('simple', $1), 1)::float8");
            s.join(
                JoinType::InnerJoin,
                Alias::new("ticket_search"),
                Expr::cust("ticket_search.ticket_id = tickets.id"),
            )
            .and_where(Expr::cust_with_values("ticket_search.doc @@ to_tsquery('simple', $1)", [tsq.clone()]))
            .expr_as(Expr::cust_with_values(rank("ticket_search.doc"), [tsq.clone()]), Alias::new("score"));
            if let Some(c) = cursor {
                let after = format!(
                    "({}, tickets.id) < (SELECT {}, s.ticket_id FROM ticket_search s \
                     WHERE s.ticket_id = $2 AND s.doc @@ to_tsquery('simple', $1))",
                    rank("ticket_search.doc"),
                    rank("s.doc")
                );
                s.and_where(Expr::cust_with_values(after, [tsq, c.to_string()]));
            }
        }
        _ => {
            let matched = query.fts5(if staff { None } else { Some(PUBLIC_TICKET_COLUMNS) });
            // Subject, description, public comments, internal notes.
            let score = format!("-bm25(ticket_fts, 10.0, 4.0, 2.0, {})", if staff { "2.0" } else { "0.0" });
            if narrow {
                s.join(
                    JoinType::InnerJoin,
                    Alias::new("ticket_search_docs"),
                    Expr::cust("ticket_search_docs.ticket_id = tickets.id"),
                )
                .join(
                    JoinType::InnerJoin,
                    Alias::new("ticket_fts"),
                    Expr::cust("ticket_fts.rowid = ticket_search_docs.doc_id"),
                );
            } else {
                // SQLite keeps the order of a CROSS JOIN: the full-text index outermost.
                s.from_clear()
                    .from(Alias::new("ticket_fts"))
                    .cross_join(Alias::new("ticket_search_docs"))
                    .cross_join(ticket::Entity)
                    .and_where(Expr::cust("ticket_search_docs.doc_id = ticket_fts.rowid"))
                    .and_where(Expr::cust("tickets.id = ticket_search_docs.ticket_id"));
            }
            s.and_where(Expr::cust_with_values("ticket_fts MATCH ?", [matched.clone()]))
                .expr_as(Expr::cust(score.clone()), Alias::new("score"));
            if let Some(c) = cursor {
                let after = format!(
                    "({score}, tickets.id) < (SELECT {score}, ? FROM ticket_fts WHERE ticket_fts MATCH ? \
                     AND ticket_fts.rowid = (SELECT doc_id FROM ticket_search_docs WHERE ticket_id = ?))"
                );
                s.and_where(Expr::cust_with_values(after, [c.to_string(), matched, c.to_string()]));
            }
        }
    }
    s.order_by_expr(Expr::cust("score"), Order::Desc).order_by((ticket::Entity, ticket::Column::Id), Order::Desc);
    s.limit(limit);
    backend.build(&s)
}

/// The KB counterpart of [`ticket_statement`] (title, tags and body; drafts are left out by
/// `filtered` for readers who may not see them).
pub fn article_statement(
    backend: DbBackend,
    filtered: Select<kb_article::Entity>,
    query: &SearchQuery,
    cursor: Option<&str>,
    limit: u64,
) -> Statement {
    let mut s = filtered.into_query();
    match backend {
        DbBackend::Postgres => {
            let tsq = query.tsquery("");
            // {D, C, B, A}: -, body, tags, title.
            let rank = |doc: &str| format!("ts_rank('{{0,0.2,0.4,1.0}}', {doc}, to_tsquery('simple', $1), 1)::float8");
            s.and_where(Expr::cust_with_values("kb_articles.search_doc @@ to_tsquery('simple', $1)", [tsq.clone()]))
                .expr_as(Expr::cust_with_values(rank("kb_articles.search_doc"), [tsq.clone()]), Alias::new("score"));
            if let Some(c) = cursor {
                let after = format!(
                    "({}, kb_articles.id) < (SELECT {}, a.id FROM kb_articles a \
                     WHERE a.id = $2 AND a.search_doc @@ to_tsquery('simple', $1))",
                    rank("kb_articles.search_doc"),
                    rank("a.search_doc")
                );
                s.and_where(Expr::cust_with_values(after, [tsq, c.to_string()]));
            }
        }
        _ => {
            let matched = query.fts5(None);
            let score = "-bm25(kb_fts, 3.0, 2.0, 1.0)";
            // The full-text index outermost, as for tickets: the KB's filters select many.
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
        }
    }
    s.order_by_expr(Expr::cust("score"), Order::Desc)
        .order_by((kb_article::Entity, kb_article::Column::Id), Order::Desc);
    s.limit(limit);
    backend.build(&s)
}

/// A search the database refused to read is the caller's: 422, never 500. (Nothing typed
/// reaches it as syntax, so this guards against the unforeseen.)
fn refused(e: DbErr) -> Error {
    let text = e.to_string();
    if text.contains("fts5") || text.contains("tsquery") { invalid("could not be read as a search") } else { e.into() }
}

/// One page of a ticket search for `who` (see [`ticket_statement`]).
pub async fn tickets(
    db: &impl ConnectionTrait,
    who: &AuthUser,
    filtered: Select<ticket::Entity>,
    narrow: bool,
    query: &SearchQuery,
    page: &PageQuery,
) -> Result<Page<TicketHit>> {
    let limit = page.limit()?;
    let backend = db.get_database_backend();
    let statement = ticket_statement(backend, who.is_staff(), narrow, filtered, query, page.cursor()?, limit + 1);
    let rows = Scored::<ticket::Model>::find_by_statement(statement).all(db).await.map_err(refused)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SearchQuery {
        SearchQuery::parse(text).unwrap().unwrap()
    }

    fn term(words: &[&str], prefix: bool, excluded: bool) -> Term {
        Term { words: words.iter().map(|w| w.to_string()).collect(), prefix, excluded }
    }

    #[test]
    fn the_language() {
        assert_eq!(
            parse(r#"printer "paper jam" -toner -"out of" tray*"#).terms,
            vec![
                term(&["printer"], false, false),
                term(&["paper", "jam"], false, false),
                term(&["toner"], false, true),
                term(&["out", "of"], false, true),
                term(&["tray"], true, false),
            ]
        );
        // Anything but letters and digits separates words; a word so split is a phrase.
        assert_eq!(parse("a.b@example.com").terms, vec![term(&["a", "b", "example", "com"], false, false)]);
        assert_eq!(parse("foo-bar").terms, vec![term(&["foo", "bar"], false, false)]);
        assert_eq!(parse(r#""unterminated phrase"#).terms, vec![term(&["unterminated", "phrase"], false, false)]);
        assert_eq!(parse("\"e mail\"*").terms, vec![term(&["e", "mail"], true, false)]);
        assert_eq!(parse("Café 票").terms, vec![term(&["Café"], false, false), term(&["票"], false, false)]);
        // Nothing to look for at all: no error, nothing matches.
        for empty in ["", "   ", "%", "\"\"", "- -- * ()", "\u{0}"] {
            assert_eq!(SearchQuery::parse(empty).unwrap(), None, "{empty:?}");
        }
    }

    #[test]
    fn what_is_refused() {
        for bad in ["-only -excluded", "a*", "x".repeat(MAX_QUERY_CHARS + 1).as_str(), &"w ".repeat(MAX_WORDS + 1)] {
            let e = SearchQuery::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Validation { ref field, .. } if field == "q"), "{bad:?}: {e}");
        }
        assert!(SearchQuery::parse(&"long".repeat(26)).is_err());
    }

    #[test]
    fn written_out_for_each_database() {
        let q = parse(r#"printer "paper jam" -toner tr*"#);
        assert_eq!(q.fts5(None), r#"("printer" AND "paper jam" AND "tr" *) NOT "toner""#);
        assert_eq!(
            q.fts5(Some(PUBLIC_TICKET_COLUMNS)),
            r#"{subject description public_text} : (("printer" AND "paper jam" AND "tr" *) NOT "toner")"#
        );
        assert_eq!(q.tsquery(""), "'printer' & ('paper' <-> 'jam') & !'toner' & 'tr':*");
        assert_eq!(q.tsquery("ABC"), "'printer':ABC & ('paper':ABC <-> 'jam':ABC) & !'toner':ABC & 'tr':*ABC");
        // Operators typed by a user stay words.
        let q = parse(r#"NOT OR AND NEAR(a b) col:x ' " \ {subject}:y"#);
        assert!(q.terms.iter().flat_map(|t| &t.words).all(|w| w.chars().all(char::is_alphanumeric)));
        assert_eq!(q.terms[0], term(&["NOT"], false, false));
    }

    #[test]
    fn highlights_are_escaped_and_marked() {
        let q = parse(r#"printer "paper jam" -toner fi*"#);
        assert_eq!(
            q.highlight("<b>Printer</b> & paper jam, not a paper; fire! toner"),
            "&lt;b&gt;<mark>Printer</mark>&lt;/b&gt; &amp; <mark>paper</mark> <mark>jam</mark>, not a paper; \
             <mark>fire</mark>! toner"
        );
        assert_eq!(q.highlight("nothing here"), "nothing here");
        assert_eq!(q.snippet("nothing here"), None);
        let long = format!("{} the printer {}", "word ".repeat(100), "more ".repeat(100));
        let snippet = q.snippet(&long).unwrap();
        assert!(snippet.starts_with('…') && snippet.ends_with('…'), "{snippet}");
        assert!(snippet.contains("<mark>printer</mark>") && snippet.chars().count() < 230, "{snippet}");
        assert_eq!(q.snippet("Printer").unwrap(), "<mark>Printer</mark>");
        assert_eq!(opening("  \"quoted\" start"), "&quot;quoted&quot; start");
        assert_eq!(opening("!!!"), "");
    }
}
