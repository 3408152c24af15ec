//! Knowledge-base articles: staff write drafts and publish; published ones are public.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    Action, Change, Kind, Page, PageQuery, Tx,
    search::{self, ArticleHit, SearchQuery},
    users::check_version,
    validate,
};
use crate::{
    auth::AuthUser,
    domain::Store,
    entity::kb_article,
    error::{Error, Result},
    policy::{self, Subject, Viewer},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    Draft,
    Published,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Draft => "draft",
            ArticleStatus::Published => "published",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub body: String,
    pub category: String,
    pub tags: Vec<String>,
    pub status: String,
    pub author_id: String,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Article {
    pub fn is_published(&self) -> bool {
        self.status == "published"
    }
}

impl From<kb_article::Model> for Article {
    fn from(m: kb_article::Model) -> Self {
        Self {
            id: m.id,
            title: m.title,
            body: m.body,
            category: m.category,
            tags: serde_json::from_value(m.tags).unwrap_or_default(),
            status: m.status,
            author_id: m.author_id,
            published_at: m.published_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 500_000, pattern = "^[^\\u0000]*$")]
    pub body: String,
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::domain::validate::Tag>, max_items = 50)]
    pub tags: Vec<String>,
    /// Defaults to `draft`.
    pub status: Option<ArticleStatus>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub title: Option<String>,
    #[schema(max_length = 500_000, pattern = "^[^\\u0000]*$")]
    pub body: Option<String>,
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub category: Option<String>,
    #[schema(value_type = Option<Vec<crate::domain::validate::Tag>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    pub status: Option<ArticleStatus>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ArticleQuery {
    /// Staff only: customers and visitors always get published articles.
    pub status: Option<ArticleStatus>,
    pub category: Option<String>,
    /// Full-text search over title, tags and body, in the language of the tickets' `q`.
    /// Matches come best first, each with a `score` and a `highlight`.
    #[param(max_length = 1000)]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of a previous page.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

fn viewer(who: Option<&AuthUser>) -> Viewer<'_> {
    who.map_or_else(Viewer::anonymous, AuthUser::viewer)
}

pub async fn get(store: &Store, who: Option<&AuthUser>, id: &str) -> Result<Article> {
    kb_article::Entity::find_by_id(id.to_string())
        .one(&store.db)
        .await?
        .filter(|a| policy::can_see(&viewer(who), &Subject::Article { published: a.status == "published" }))
        .map(Article::from)
        .ok_or(Error::NotFound("article"))
}

/// The articles `viewer` may read that the filters of `q` select (neither its text nor its
/// page): drafts only for those the policy lets read them.
pub fn filtered(viewer: &Viewer, q: &ArticleQuery) -> Select<kb_article::Entity> {
    let mut query = kb_article::Entity::find();
    let drafts_readable = policy::can_see(viewer, &Subject::Article { published: false });
    let status = if drafts_readable { q.status } else { Some(ArticleStatus::Published) };
    if let Some(s) = status {
        query = query.filter(kb_article::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = q.category.as_deref() {
        query = query.filter(kb_article::Column::Category.eq(c));
    }
    query
}

/// A page of the list without a search: newest first, after the cursor.
pub fn list_query(viewer: &Viewer, q: &ArticleQuery) -> Result<Select<kb_article::Entity>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let mut query = filtered(viewer, q).order_by_desc(kb_article::Column::Id);
    if let Some(cursor) = page.cursor()? {
        query = query.filter(kb_article::Column::Id.lt(cursor));
    }
    Ok(query.limit(page.limit()? + 1))
}

/// Articles newest first; with a search (`q`), the matches best first ([`search::articles`]).
pub async fn list(store: &Store, who: Option<&AuthUser>, q: &ArticleQuery) -> Result<Page<ArticleHit>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let limit = page.limit()?;
    if let Some(text) = q.q.as_deref() {
        match SearchQuery::parse(text)? {
            Some(search) => return search::articles(&store.db, filtered(&viewer(who), q), &search, &page).await,
            // Only signs, no word: nothing can match.
            None if !text.trim().is_empty() => return Ok(Page::from_rows(Vec::new(), limit, |_| String::new(), |h| h)),
            None => {}
        }
    }
    let rows = list_query(&viewer(who), q)?.all(&store.db).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone(), |r| ArticleHit::from(Article::from(r))))
}

fn change_for(action: Action, a: &Article, actor: &str) -> Change {
    Change::new(Kind::KbArticle, action, &a.id, a).staff_only(!a.is_published()).by(actor)
}

pub async fn create(store: &Store, who: &AuthUser, input: NewArticle) -> Result<Article> {
    let status = input.status.unwrap_or(ArticleStatus::Draft);
    let now = super::now();
    let model = kb_article::ActiveModel {
        id: Set(super::new_id()),
        title: Set(validate::required_text("title", &input.title, 500)?),
        body: Set(validate::optional_text("body", &input.body, 500_000)?),
        category: Set(validate::required_text("category", input.category.as_deref().unwrap_or("general"), 100)?),
        tags: Set(validate::tags("tags", &input.tags)?),
        status: Set(status.as_str().into()),
        author_id: Set(who.id().to_string()),
        published_at: Set((status == ArticleStatus::Published).then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let view = Article::from(model.insert(&tx.txn).await?);
    tx.record(change_for(Action::Created, &view, who.id())).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn update(
    store: &Store,
    who: &AuthUser,
    id: &str,
    patch: ArticlePatch,
    if_match: Option<i64>,
) -> Result<Article> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let current =
        kb_article::Entity::find_by_id(id.to_string()).one(&tx.txn).await?.ok_or(Error::NotFound("article"))?;
    check_version(current.version, if_match)?;
    let mut am: kb_article::ActiveModel = current.clone().into();
    if let Some(t) = &patch.title {
        am.title = Set(validate::required_text("title", t, 500)?);
    }
    if let Some(b) = &patch.body {
        am.body = Set(validate::optional_text("body", b, 500_000)?);
    }
    if let Some(c) = &patch.category {
        am.category = Set(validate::required_text("category", c, 100)?);
    }
    if let Some(t) = &patch.tags {
        am.tags = Set(validate::tags("tags", t)?);
    }
    if let Some(s) = patch.status {
        am.status = Set(s.as_str().into());
        if s == ArticleStatus::Published && current.published_at.is_none() {
            am.published_at = Set(Some(super::now()));
        }
    }
    if !am.is_changed() {
        return Ok(current.into());
    }
    let model =
        crate::domain::versioned::update::<kb_article::Entity>(&tx.txn, &current.id, current.version, am).await?;
    let view = Article::from(model);
    let was_published = current.status == "published";
    // Unpublishing is news to readers too: they must drop the article.
    let change = change_for(Action::Updated, &view, who.id())
        .staff_only(!view.is_published() && !was_published)
        .previous(Article::from(current));
    tx.record(change).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn delete(store: &Store, who: &AuthUser, id: &str) -> Result<()> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let current =
        kb_article::Entity::find_by_id(id.to_string()).one(&tx.txn).await?.ok_or(Error::NotFound("article"))?;
    kb_article::Entity::delete_by_id(id.to_string()).exec(&tx.txn).await?;
    let view = Article::from(current);
    tx.record(change_for(Action::Deleted, &view, who.id())).await?;
    tx.commit().await
}
