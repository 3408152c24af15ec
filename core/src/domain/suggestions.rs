//! `GET /api/tickets/{id}/suggested-articles`: published KB articles ranked by how many of the
//! ticket's words they share, weighted by where they appear and how rare the word is.
use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::AuthUser,
    domain::Store,
    domain::{kb::Article, tickets},
    entity::kb_article,
    error::Result,
};

/// How many suggestions at most, and how many published articles are considered.
const LIMIT: usize = 5;
const SCAN: u64 = 2000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    /// Higher is more relevant.
    pub score: f64,
    pub article: Article,
}

const STOP: [&str; 40] = [
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
    "has", "have", "from", "with", "this", "that", "they", "them", "then", "there", "what", "when", "where", "which",
    "who", "will", "would", "your", "into", "about", "after", "been", "does", "its",
];

/// Lower-cased words of three or more letters, without stop words.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Scores each article against the ticket's words: title ×3, tags ×2, body ×1 per shared word,
/// each weighted by the word's rarity over the articles. Zero-score articles are dropped.
pub fn rank(ticket_text: &str, articles: Vec<Article>) -> Vec<Suggestion> {
    let query: HashSet<String> = words(ticket_text).into_iter().collect();
    if query.is_empty() {
        return Vec::new();
    }
    let docs: Vec<(HashSet<String>, HashSet<String>, HashSet<String>)> = articles
        .iter()
        .map(|a| {
            let set = |t: &str| words(t).into_iter().collect::<HashSet<_>>();
            (set(&a.title), set(&a.tags.join(" ")), set(&a.body))
        })
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for (t, g, b) in &docs {
        for w in query.iter().filter(|w| t.contains(*w) || g.contains(*w) || b.contains(*w)) {
            *df.entry(w.as_str()).or_default() += 1;
        }
    }
    let n = articles.len() as f64;
    let mut scored: Vec<Suggestion> = articles
        .into_iter()
        .zip(docs)
        .map(|(article, (t, g, b))| {
            let score = query
                .iter()
                .map(|w| {
                    let weight = 3.0 * f64::from(u8::from(t.contains(w)))
                        + 2.0 * f64::from(u8::from(g.contains(w)))
                        + f64::from(u8::from(b.contains(w)));
                    let idf = (1.0 + n / (1.0 + *df.get(w.as_str()).unwrap_or(&0) as f64)).ln();
                    weight * idf
                })
                .sum::<f64>();
            Suggestion { score: (score * 1000.0).round() / 1000.0, article }
        })
        .filter(|s| s.score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.article.id.cmp(&a.article.id)));
    scored.truncate(LIMIT);
    scored
}

/// Suggestions for a ticket the caller may read.
pub async fn for_ticket(store: &Store, who: &AuthUser, ticket_id: &str) -> Result<Vec<Suggestion>> {
    let t = tickets::readable(&store.db, who, ticket_id).await?;
    let articles = kb_article::Entity::find()
        .filter(kb_article::Column::Status.eq("published"))
        .order_by_desc(kb_article::Column::Id)
        .limit(SCAN)
        .all(&store.db)
        .await?;
    let text = format!("{} {} {}", t.subject, t.description, t.category);
    Ok(rank(&text, articles.into_iter().map(Article::from).collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str, body: &str) -> Article {
        let now = chrono::Utc::now();
        Article {
            id: id.into(),
            title: title.into(),
            body: body.into(),
            category: "general".into(),
            tags: vec![],
            status: "published".into(),
            author_id: "a".into(),
            published_at: Some(now),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn title_match_ranks_first_and_unrelated_are_dropped() {
        let ranked = rank(
            "VPN keeps disconnecting on wifi",
            vec![
                article("1", "Printer setup", "How to add a printer"),
                article("2", "Wifi troubleshooting", "Restart the router; check the VPN client"),
                article("3", "VPN disconnecting", "Update the VPN client"),
            ],
        );
        let ids: Vec<&str> = ranked.iter().map(|s| s.article.id.as_str()).collect();
        assert_eq!(ids, vec!["3", "2"]);
        assert!(rank("a an", vec![article("1", "x", "y")]).is_empty());
    }
}
