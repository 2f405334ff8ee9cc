//! The HTTP JSON / SCIM 2.0 source (the only file naming reqwest, built on rustls): paged
//! `GET {url}/Users`, incremental runs filtered by `meta.lastModified` with If-None-Match,
//! and a complete listing every `full_every` (only a complete listing reveals deletions;
//! it re-hashes only entries modified since the last batch).

use super::source::{Batch, Deletions, FetchFuture, Source, SourceError, UpstreamUser};
use crate::domain::{Pin, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where each user attribute is read from: a path such as `userName`,
/// `emails[primary].value`, `groups[].display` or `urn:…:User:pin` (extension schema).
#[derive(Clone, Debug, Serialize)]
pub struct ScimAttributes {
    pub id: String,
    pub name: String,
    pub email: String,
    pub groups: String,
    pub pin: Option<String>,
    pub card: Option<String>,
    pub enabled: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScimSettings {
    /// Base URL; users are read from `{url}/Users`.
    pub url: String,
    /// A file holding the bearer token (read at every run, so it can be rotated).
    pub token_file: Option<PathBuf>,
    pub page_size: u32,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout: Duration,
    /// A complete listing (which alone reveals deletions) at least this often.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub full_every: Duration,
    pub attributes: ScimAttributes,
}

/// What the SCIM source keeps between runs, saved as the cursor with each batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The newest `meta.lastModified` applied (as the server wrote it) and its time.
    high_water: Option<String>,
    high_water_ms: i64,
    /// When the last complete listing was fetched (unix ms).
    last_full_ms: i64,
    /// The ETag of the last incremental answer.
    etag: Option<String>,
}

pub struct ScimSource {
    settings: ScimSettings,
    client: reqwest::Client,
}

/// One page of resources, or "not modified".
enum Page {
    NotModified,
    Resources {
        items: Vec<Value>,
        total: usize,
        etag: Option<String>,
    },
}

impl ScimSource {
    pub fn new(settings: ScimSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("pinwarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(ScimSource { settings, client })
    }

    fn token(&self) -> Result<Option<String>, SourceError> {
        let Some(path) = &self.settings.token_file else {
            return Ok(None);
        };
        let text = crate::secret::read_line("directory.token_file", path)
            .map_err(|e| SourceError::Rejected(e.to_string()))?;
        Ok(Some(text.trim().to_string()))
    }

    async fn page(
        &self,
        token: Option<&str>,
        filter: Option<&str>,
        start: usize,
        etag: Option<&str>,
    ) -> Result<Page, SourceError> {
        let url = format!("{}/Users", self.settings.url);
        let (start, count) = (start.to_string(), self.settings.page_size.to_string());
        let mut query = vec![("startIndex", start.as_str()), ("count", count.as_str())];
        if let Some(f) = filter {
            query.push(("filter", f));
        }
        let mut request = self.client.get(&url).query(&query);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(e) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(format!("{url}: {}", without_url(&e))))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Page::NotModified);
        }
        if let Some(e) = status_error(status, &url) {
            return Err(e);
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SourceError::Unavailable(format!("{url}: {}", without_url(&e))))?;
        let body = parse_list(&bytes).map_err(|e| {
            SourceError::Malformed(format!("{url}: not a SCIM list response ({e})"))
        })?;
        Ok(Page::Resources {
            items: body.resources,
            total: body.total_results,
            etag,
        })
    }

    /// Every page of a listing; `None` when the first page was not modified.
    async fn listing(
        &self,
        token: Option<&str>,
        filter: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<Value>, Option<String>)>, SourceError> {
        let mut all: Vec<Value> = Vec::new();
        let mut first_etag = None;
        let mut pages = 0usize;
        loop {
            let if_none_match = if pages == 0 { etag } else { None };
            match self
                .page(token, filter, all.len() + 1, if_none_match)
                .await?
            {
                Page::NotModified if pages == 0 => return Ok(None),
                Page::NotModified => {
                    return Err(SourceError::Malformed("304 on a later page".into()))
                }
                Page::Resources { items, total, etag } => {
                    if pages == 0 {
                        first_etag = etag;
                    }
                    pages += 1;
                    let empty = items.is_empty();
                    all.extend(items);
                    let limit = total / self.settings.page_size.max(1) as usize + 2;
                    if empty || all.len() >= total || pages > limit {
                        return Ok(Some((all, first_etag)));
                    }
                }
            }
        }
    }

    async fn fetch_now(&self, cursor: Option<&[u8]>) -> Result<Batch, SourceError> {
        let token = self.token()?;
        let previous: Option<Cursor> = cursor.and_then(|c| serde_json::from_slice(c).ok());
        let now = Timestamp::now().millis();
        let full_every = self.settings.full_every.as_millis() as i64;
        let incremental = previous
            .as_ref()
            .filter(|c| c.high_water.is_some() && now - c.last_full_ms < full_every);
        let mut next = previous.clone().unwrap_or_default();
        let filter = incremental
            .and_then(|c| c.high_water.as_deref())
            .map(|hw| format!("meta.lastModified gt \"{hw}\""));
        let etag = incremental.and_then(|c| c.etag.as_deref());
        let Some((items, etag)) = self
            .listing(token.as_deref(), filter.as_deref(), etag)
            .await?
        else {
            return Ok(Batch {
                changed: Vec::new(),
                deletions: Deletions::Keys(Vec::new()),
                cursor: None,
            });
        };
        let applied_up_to = previous.as_ref().map_or(i64::MIN, |c| c.high_water_ms);
        let mut changed = Vec::new();
        let mut present = Vec::new();
        for item in &items {
            let (user, modified) = map_resource(&self.settings.attributes, item)?;
            if let Some((text, ms)) = modified {
                if ms > next.high_water_ms || next.high_water.is_none() {
                    next.high_water = Some(text);
                    next.high_water_ms = ms;
                }
                // A complete listing re-hashes only entries modified since the last batch.
                if incremental.is_none() && previous.is_some() && ms <= applied_up_to {
                    present.push(user.key);
                    continue;
                }
            }
            changed.push(user);
        }
        let deletions = if incremental.is_some() {
            // The ETag answers this filter only; a moved high-water mark is a new filter.
            let same_filter = previous.as_ref().map(|p| &p.high_water) == Some(&next.high_water);
            next.etag = etag.filter(|_| same_filter);
            Deletions::Keys(Vec::new())
        } else {
            next.last_full_ms = now;
            next.etag = None;
            Deletions::AllExcept { present }
        };
        let cursor = serde_json::to_vec(&next).expect("the cursor serialises");
        Ok(Batch {
            changed,
            deletions,
            cursor: Some(cursor),
        })
    }
}

/// Maps one SCIM resource; also returns its `meta.lastModified` (text and unix ms).
pub fn map_resource(
    a: &ScimAttributes,
    item: &Value,
) -> Result<(UpstreamUser, Option<(String, i64)>), SourceError> {
    let key = item
        .get("id")
        .and_then(text)
        .ok_or_else(|| SourceError::Malformed("a resource without an `id`".into()))?;
    let first = |path: &str| select(item, path).into_iter().find_map(text);
    let all = |path: &str| select(item, path).into_iter().filter_map(text).collect();
    let when = |path: &Option<String>| {
        path.as_deref()
            .and_then(first)
            .and_then(|t| Timestamp::parse(&t))
    };
    let modified = item
        .pointer("/meta/lastModified")
        .and_then(Value::as_str)
        .and_then(|t| Some((t.to_owned(), Timestamp::parse(t)?.millis())));
    let user = UpstreamUser {
        id: first(&a.id).unwrap_or_default(),
        key,
        name: first(&a.name).unwrap_or_default(),
        email: first(&a.email),
        groups: all(&a.groups),
        pin: a
            .pin
            .as_deref()
            .and_then(first)
            .filter(|p| !p.is_empty())
            .map(Pin::new),
        cards: a.card.as_deref().map(all).unwrap_or_default(),
        enabled: select(item, &a.enabled)
            .first()
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
        valid_from: when(&a.valid_from),
        valid_until: when(&a.valid_until),
        // Unchanged entries of a complete listing are reported as present instead.
        version: None,
    };
    Ok((user, modified))
}

/// A SCIM ListResponse body: its resources and `totalResults`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(default)]
    pub total_results: usize,
    #[serde(default, rename = "Resources")]
    pub resources: Vec<Value>,
}

/// Decodes a page's body (the bytes as the server sent them).
pub fn parse_list(body: &[u8]) -> Result<ListResponse, serde_json::Error> {
    serde_json::from_slice(body)
}

fn status_error(status: reqwest::StatusCode, url: &str) -> Option<SourceError> {
    use reqwest::StatusCode as S;
    match status {
        s if s.is_success() => None,
        S::UNAUTHORIZED | S::FORBIDDEN => Some(SourceError::Rejected(format!(
            "{url}: HTTP {status}: check token_file"
        ))),
        S::GONE => Some(SourceError::CursorExpired(format!("{url}: HTTP {status}"))),
        s if s.is_server_error() || s == S::TOO_MANY_REQUESTS => {
            Some(SourceError::Unavailable(format!("{url}: HTTP {status}")))
        }
        _ => Some(SourceError::Rejected(format!(
            "{url}: HTTP {status}: check url"
        ))),
    }
}

/// What went wrong, without the URL (the caller names it once) and, for a body that is
/// not the JSON we expect, without serde's message (it may quote a value, such as a PIN).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_decode() {
        return "the body is not the JSON expected".into();
    }
    let mut text = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Values at `path`: dotted segments, `name[]` for every element of an array,
/// `name[primary]` for the element marked primary (else the first), `name[type=work]`,
/// and a leading extension schema URN (`urn:…:User:attr`).
pub fn select<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let (mut current, rest) = match path.strip_prefix("urn:").and(path.rsplit_once(':')) {
        Some((urn, rest)) => (root.get(urn).into_iter().collect::<Vec<_>>(), rest),
        None => (vec![root], path),
    };
    for segment in rest.split('.') {
        let (name, filter) = match segment.split_once('[') {
            Some((name, f)) => (name, Some(f.trim_end_matches(']'))),
            None => (segment, None),
        };
        let mut next = Vec::new();
        for v in current {
            let Some(child) = v.get(name) else { continue };
            match (filter, child.as_array()) {
                (None, _) => next.push(child),
                (Some(_), None) => next.push(child),
                (Some(""), Some(items)) => next.extend(items),
                (Some(f), Some(items)) => next.extend(pick(items, f)),
            }
        }
        current = next;
    }
    current
}

fn pick<'a>(items: &'a [Value], filter: &str) -> Option<&'a Value> {
    let matches = |v: &&Value| match filter.split_once('=') {
        Some((k, want)) => v.get(k).and_then(Value::as_str) == Some(want.trim_matches('"')),
        None => v.get(filter).and_then(Value::as_bool) == Some(true),
    };
    items.iter().find(matches).or_else(|| items.first())
}

impl Source for ScimSource {
    fn fetch<'a>(&'a self, cursor: Option<&'a [u8]>) -> FetchFuture<'a> {
        Box::pin(self.fetch_now(cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_paths() {
        let u = json!({
            "userName": "ann",
            "emails": [{"value": "a@x", "type": "home"}, {"value": "ann@work", "primary": true, "type": "work"}],
            "groups": [{"display": "staff"}, {"display": "door"}],
            "urn:ietf:params:scim:schemas:extension:pinwarden:2.0:User": {"pin": "048213", "badge": {"id": 42}}
        });
        let one = |p: &str| select(&u, p).into_iter().find_map(text);
        assert_eq!(one("userName").as_deref(), Some("ann"));
        assert_eq!(one("emails[primary].value").as_deref(), Some("ann@work"));
        assert_eq!(one("emails[type=home].value").as_deref(), Some("a@x"));
        let groups: Vec<_> = select(&u, "groups[].display")
            .into_iter()
            .filter_map(text)
            .collect();
        assert_eq!(groups, vec!["staff", "door"]);
        let ext = "urn:ietf:params:scim:schemas:extension:pinwarden:2.0:User";
        assert_eq!(
            one(&format!("{ext}:pin")).as_deref(),
            Some("048213"),
            "leading zero kept"
        );
        assert_eq!(one(&format!("{ext}:badge.id")).as_deref(), Some("42"));
        assert!(select(&u, "nothing.here").is_empty());
    }
}
