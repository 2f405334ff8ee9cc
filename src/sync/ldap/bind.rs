//! A person's directory password checked by an LDAP bind as that person (the self-service
//! page's sign-in): the service account finds the person's entry by the id attribute under
//! the configured base and filter, then a second connection binds as that entry's DN. The
//! password is only passed to the bind: never stored, logged or put in an error.

use super::conn::Conn;
use super::settings::LdapSettings;
use crate::sync::source::SourceError;

/// Whether `password` is `id`'s directory password. Ok(false) for a wrong password, an
/// unknown or ambiguous id (after a bind as a DN that cannot exist, so it costs what a
/// wrong password does) and an empty password (which LDAP would take as an
/// unauthenticated bind); Err when the directory cannot be asked.
pub async fn check_password(
    settings: &LdapSettings,
    id: &str,
    password: &str,
) -> Result<bool, SourceError> {
    if password.is_empty() {
        return Ok(false);
    }
    let wants_tls = settings.starttls || settings.url.starts_with("ldaps://");
    let tls = match wants_tls {
        true => Some(
            super::tls_config(settings.ca_file.as_deref())
                .map_err(|e| SourceError::Rejected(e.to_string()))?,
        ),
        false => None,
    };
    let mut service = Conn::open(settings, tls.clone()).await?;
    let base_filter = match settings.filter.starts_with('(') {
        true => settings.filter.clone(),
        false => format!("({})", settings.filter),
    };
    let filter = format!(
        "(&{base_filter}({}={}))",
        settings.mapping.id,
        ldap3::ldap_escape(id)
    );
    let mut dns = Vec::new();
    let attrs = ["1.1".to_string()];
    service
        .paged(
            &settings.base_dn,
            settings.scope,
            &filter,
            &attrs,
            |entry| {
                dns.push(entry.dn.clone());
                Ok(())
            },
        )
        .await?;
    service.close().await;
    // An unknown or ambiguous id still costs a bind, as a DN no entry can have: answering
    // it without one would be quicker, and tell which ids exist.
    let (dn, real) = match dns.as_slice() {
        [dn] => (dn.clone(), true),
        _ => (
            format!("cn=pinwarden-no-such-entry,{}", settings.base_dn),
            false,
        ),
    };
    let as_person = LdapSettings {
        bind_dn: Some(dn),
        bind_password: password.to_string(),
        ..settings.clone()
    };
    match Conn::open(&as_person, tls).await {
        Ok(conn) => {
            conn.close().await;
            Ok(real)
        }
        Err(SourceError::Rejected(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
