//! One LDAP connection for one fetch: connect (LDAPS or StartTLS), simple bind, streaming and
//! paged searches, the root DSE; every wait bounded by the settings' timeout, every ldap3
//! error turned into the `SourceError` that says what the engine does next.

use super::mapping::Entry;
use super::settings::{LdapSettings, Scope};
use crate::sync::source::SourceError;
use ldap3::controls::{ControlType, PagedResults, RawControl};
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, ResultEntry, SearchEntry,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// `e-syncRefreshRequired` (RFC 4533): the cookie is too old to resume from.
pub const SYNC_REFRESH_REQUIRED: u32 = 4096;

/// An open, bound connection. Dropping it stops the connection task.
pub struct Conn {
    ldap: Ldap,
    driver: Option<JoinHandle<Result<(), LdapError>>>,
    timeout: Duration,
    page_size: u32,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

impl Conn {
    /// Connects and binds as the settings say.
    pub async fn open(
        s: &LdapSettings,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Conn, SourceError> {
        let mut cs = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_starttls(s.starttls);
        if let Some(config) = tls {
            cs = cs.set_config(config);
        }
        let (conn, ldap) = match LdapConnAsync::with_settings(cs, &s.url).await {
            Ok(pair) => pair,
            Err(e) => return Err(connect_error(&s.url, e)),
        };
        let mut c = Conn {
            ldap,
            driver: Some(tokio::spawn(conn.drive())),
            timeout: s.timeout,
            page_size: s.page_size,
        };
        if let Some(dn) = &s.bind_dn {
            let pw = s.bind_password.clone();
            let mut ldap = c.ldap.clone();
            let res = c
                .step(async move { ldap.simple_bind(dn, &pw).await })
                .await?;
            if res.rc != 0 {
                return Err(SourceError::Rejected(format!(
                    "bind as `{dn}` refused: {} ({}); check bind_dn and bind_password_file",
                    res_text(&res),
                    res.rc
                )));
            }
        }
        Ok(c)
    }

    /// Runs one ldap3 call under the timeout, mapping its failure.
    async fn step<T>(
        &mut self,
        fut: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(e).await),
        }
    }

    fn timed_out(&self) -> SourceError {
        SourceError::Unavailable(format!(
            "no answer from the directory within {:?}",
            self.timeout
        ))
    }

    /// An ldap3 error: a panicked connection task means the server sent something ldap3
    /// could not decode.
    async fn failed(&mut self, e: LdapError) -> SourceError {
        if let Some(driver) = self.driver.take_if(|d| d.is_finished()) {
            if let Err(join) = driver.await {
                if join.is_panic() {
                    return SourceError::Malformed(
                        "the LDAP client could not decode the server's reply".to_owned(),
                    );
                }
            }
        }
        match e {
            LdapError::LdapResult { result } => result_error(&result),
            LdapError::FilterParsing => SourceError::Rejected("invalid search filter".into()),
            other => SourceError::Unavailable(format!("LDAP connection failed: {other}")),
        }
    }

    /// Streams one search, handing every entry, referral or intermediate message to
    /// `on_item`; returns the final result (any result code) with its controls.
    pub async fn stream(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
        mut on_item: impl FnMut(ResultEntry) -> Result<(), SourceError>,
    ) -> Result<LdapResult, SourceError> {
        let scope = match scope {
            Scope::OneLevel => ldap3::Scope::OneLevel,
            Scope::Subtree => ldap3::Scope::Subtree,
        };
        let mut ldap = self.ldap.clone();
        ldap.with_controls(controls);
        let attrs = attrs.to_vec();
        let mut search = self
            .step(ldap.streaming_search(base, scope, filter, attrs))
            .await?;
        while let Some(item) = self.step(search.next()).await? {
            on_item(item)?;
        }
        Ok(search.finish().await)
    }

    /// A paged search (RFC 2696) at the configured page size, handing each entry to
    /// `on_entry`. A server that ignores paging just sends everything in one go.
    pub async fn paged(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        mut on_entry: impl FnMut(Entry) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let mut cookie = Vec::new();
        loop {
            let size = i32::try_from(self.page_size).unwrap_or(1000);
            let control = PagedResults { size, cookie }.into();
            let res = self
                .stream(base, scope, filter, attrs, vec![control], |item| {
                    if item.is_ref() || item.is_intermediate() {
                        return Ok(());
                    }
                    on_entry(to_entry(item))
                })
                .await?;
            if res.rc != 0 {
                return Err(result_error(&res));
            }
            let next = res
                .ctrls
                .iter()
                .find(|c| matches!(c.0, Some(ControlType::PagedResults)))
                .map(|c| c.1.parse::<PagedResults>().cookie);
            match next {
                Some(c) if !c.is_empty() => cookie = c,
                _ => return Ok(()),
            }
        }
    }

    /// Reads one entry's attributes by DN (the root DSE is `""`).
    pub async fn read(&mut self, dn: &str, attrs: &[String]) -> Result<Entry, SourceError> {
        let mut found = None;
        let res = self
            .stream_base(dn, attrs, |item| {
                if !item.is_ref() && !item.is_intermediate() {
                    found = Some(to_entry(item));
                }
                Ok(())
            })
            .await?;
        if res.rc != 0 {
            return Err(result_error(&res));
        }
        found.ok_or_else(|| SourceError::Rejected(format!("entry `{dn}` is not readable")))
    }

    async fn stream_base(
        &mut self,
        dn: &str,
        attrs: &[String],
        on_item: impl FnMut(ResultEntry) -> Result<(), SourceError>,
    ) -> Result<LdapResult, SourceError> {
        let scope = ldap3::Scope::Base;
        let mut ldap = self.ldap.clone();
        let attrs = attrs.to_vec();
        let mut search = self
            .step(ldap.streaming_search(dn, scope, "(objectClass=*)", attrs))
            .await?;
        let mut on_item = on_item;
        while let Some(item) = self.step(search.next()).await? {
            on_item(item)?;
        }
        Ok(search.finish().await)
    }

    /// Unbinds politely; failures do not matter any more.
    pub async fn close(mut self) {
        let mut ldap = self.ldap.clone();
        let _ = self.step(async move { ldap.unbind().await }).await;
    }
}

/// Converts an ldap3 entry into our attribute map (text and binary values alike).
pub fn to_entry(item: ResultEntry) -> Entry {
    let se = SearchEntry::construct(item);
    let mut entry = Entry::new(se.dn);
    for (name, values) in se.attrs {
        entry.add(&name, values.into_iter().map(String::into_bytes));
    }
    for (name, values) in se.bin_attrs {
        entry.add(&name, values);
    }
    entry
}

fn res_text(res: &LdapResult) -> String {
    let text = res.text.trim();
    if text.is_empty() {
        res.to_string()
    } else {
        text.chars().take(200).collect()
    }
}

/// What an LDAP result code means for the engine.
pub fn result_error(res: &LdapResult) -> SourceError {
    let text = res_text(res);
    match res.rc {
        SYNC_REFRESH_REQUIRED => SourceError::CursorExpired(format!("{text} (4096)")),
        4 => SourceError::Rejected(format!(
            "size limit exceeded (4): raise the bind DN's size limit, e.g. \
             `limits dn.exact=\"<bind dn>\" size=unlimited` in slapd ({text})"
        )),
        12 => SourceError::Rejected(format!(
            "the server does not support a control we need (12): for syncrepl enable the \
             syncprov overlay, or use poll mode ({text})"
        )),
        3 | 51 | 52 | 80 => SourceError::Unavailable(format!("{text} ({})", res.rc)),
        rc => SourceError::Rejected(format!("{text} ({rc})")),
    }
}

fn connect_error(url: &str, e: LdapError) -> SourceError {
    match e {
        LdapError::Rustls { source } => tls_error(url, &source),
        LdapError::Io { source } if tls_cause(&source).is_some() => tls_error(
            url,
            tls_cause(&source).unwrap_or(&rustls::Error::HandshakeNotComplete),
        ),
        LdapError::LdapResult { result } => result_error(&result),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            SourceError::Rejected(format!("`{url}` is not a usable LDAP URL"))
        }
        other => SourceError::Unavailable(format!("cannot connect to {url}: {other}")),
    }
}

fn tls_cause(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

fn tls_error(url: &str, e: &rustls::Error) -> SourceError {
    SourceError::Rejected(format!(
        "TLS with {url} failed: {e}; check ca_file and the server certificate"
    ))
}
