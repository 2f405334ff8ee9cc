//! SCIM list responses: the page decoder, the attribute path selector and the mapping of
//! each resource to a user, under the default attribute paths and under paths that use
//! every selector form (extension URN, `[]`, `[primary]`, `[type=work]`).
//! Invariant: a mapped user's key is the resource's `id`.

use pinwarden::sync::scim::{map_resource, parse_list, select, ScimAttributes};
use serde_json::Value;

fn attributes() -> [ScimAttributes; 2] {
    let defaults = ScimAttributes {
        id: "userName".into(),
        name: "displayName".into(),
        email: "emails[primary].value".into(),
        groups: "groups[].display".into(),
        pin: None,
        card: None,
        enabled: "active".into(),
        valid_from: None,
        valid_until: None,
    };
    let ext = "urn:ietf:params:scim:schemas:extension:pinwarden:2.0:User";
    let every_form = ScimAttributes {
        id: "externalId".into(),
        name: "name.formatted".into(),
        email: "emails[type=work].value".into(),
        groups: "groups[].value".into(),
        pin: Some(format!("{ext}:pin")),
        card: Some(format!("{ext}:cards[]")),
        enabled: format!("{ext}:enabled"),
        valid_from: Some(format!("{ext}:validFrom")),
        valid_until: Some("meta.expires".into()),
    };
    [defaults, every_form]
}

pub fn run(data: &[u8]) {
    let Ok(list) = parse_list(data) else {
        return;
    };
    for attrs in attributes() {
        for item in &list.resources {
            let _ = select(item, "addresses[type=\"home\"].street.x[]");
            if let Ok((user, _modified)) = map_resource(&attrs, item) {
                let id = item.get("id").expect("a mapped resource has an id");
                match id {
                    Value::String(s) => assert_eq!(&user.key, s),
                    other => assert_eq!(user.key, other.to_string()),
                }
            }
        }
    }
}
