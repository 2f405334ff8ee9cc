//! Who may use the control socket: the caller's uid and groups (from the kernel, never from
//! the request) against `[control] admin_uids`, `admin_groups` and `read_groups`. Owns the
//! settings, the group lookup and the sorting of requests into read-only and the rest;
//! refusing and auditing is the handler's.

use super::proto::Request;
use super::Caller;
use std::ffi::CString;

/// `[control]` as configured: group names are resolved when the daemon starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ControlSettings {
    pub admin_uids: Vec<u32>,
    pub admin_groups: Vec<String>,
    pub read_groups: Vec<String>,
}

/// What a caller may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read-only requests (`read_only`).
    Read,
    /// Nothing.
    None,
}

impl Role {
    pub fn permits(self, request: &Request) -> bool {
        match self {
            Role::Admin => true,
            Role::Read => read_only(request),
            Role::None => false,
        }
    }
}

/// The resolved rules: uid 0 and the daemon's own uid are always admins.
#[derive(Clone, Debug, Default)]
pub struct Access {
    admin_uids: Vec<u32>,
    admin_gids: Vec<u32>,
    read_gids: Vec<u32>,
    own_uid: u32,
}

impl Access {
    /// Resolves the group names (a number is taken as a gid); an unknown name is an error
    /// naming the key.
    pub fn resolve(settings: &ControlSettings) -> Result<Access, String> {
        let gids = |key: &str, names: &[String]| {
            names
                .iter()
                .map(|n| {
                    gid_of(n).ok_or_else(|| {
                        format!(
                            "control.{key}: no group `{n}` on this system: create it \
                             (groupadd {n}) or remove it from the list"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Access {
            admin_uids: settings.admin_uids.clone(),
            admin_gids: gids("admin_groups", &settings.admin_groups)?,
            read_gids: gids("read_groups", &settings.read_groups)?,
            // SAFETY: getuid cannot fail and touches no memory of ours.
            own_uid: unsafe { libc::getuid() },
        })
    }

    /// The role of `uid` in `groups` (its primary and supplementary gids).
    pub fn role(&self, uid: u32, groups: &[u32]) -> Role {
        if uid == 0 || uid == self.own_uid || self.admin_uids.contains(&uid) {
            return Role::Admin;
        }
        if groups.iter().any(|g| self.admin_gids.contains(g)) {
            return Role::Admin;
        }
        if groups.iter().any(|g| self.read_gids.contains(g)) {
            return Role::Read;
        }
        Role::None
    }

    /// The role of the peer of a control connection.
    pub fn role_of(&self, caller: &Caller) -> Role {
        match self.role(caller.uid, &[caller.gid]) {
            Role::Admin => Role::Admin,
            _ => self.role(caller.uid, &groups_of(caller)),
        }
    }
}

/// Whether `request` only reads. No wildcard arm: a new request must be sorted here.
pub fn read_only(request: &Request) -> bool {
    match request {
        Request::Status
        | Request::UserShow { .. }
        | Request::UserList
        | Request::GuestList { .. }
        | Request::MailList
        | Request::MailPreview { .. }
        | Request::LockoutList
        | Request::Audit { .. }
        | Request::AuditQuery { .. } => true,
        Request::UserAdd { .. }
        | Request::UserSetPin { .. }
        | Request::UserSetDuress { .. }
        | Request::UserClearDuress { .. }
        | Request::UserRemove { .. }
        | Request::UserDisable { .. }
        | Request::UserEnable { .. }
        | Request::UserSetValidity { .. }
        | Request::GuestAdd { .. }
        | Request::GuestExtend { .. }
        | Request::GuestEnd { .. }
        | Request::Import { .. }
        | Request::LockoutClear { .. }
        | Request::Sync { .. } => false,
    }
}

/// The caller's primary and supplementary gids: from `/proc/<pid>/status` (the groups of
/// the process itself), else from the group database for its uid (when the daemon cannot
/// see other users' processes, as under `ProtectProc=invisible`).
fn groups_of(caller: &Caller) -> Vec<u32> {
    let mut groups = vec![caller.gid];
    let from_proc = caller
        .pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|status| proc_groups(&status));
    match from_proc {
        Some(more) => groups.extend(more),
        None => groups.extend(database_groups(caller.uid, caller.gid)),
    }
    groups
}

/// The `Groups:` line of a `/proc/<pid>/status` text.
fn proc_groups(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

/// `getgrouplist` for the user owning `uid` (empty when it has no passwd entry).
fn database_groups(uid: u32, gid: u32) -> Vec<u32> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live buffer of the size given; the result is read only
    // when getpwuid_r reports an entry.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Vec::new();
    }
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: pw_name points into `buf`, alive here; `groups` holds `n` entries.
    let rc = unsafe { libc::getgrouplist(pwd.pw_name, gid, groups.as_mut_ptr(), &mut n) };
    if rc < 0 {
        return Vec::new();
    }
    groups.truncate(n.max(0) as usize);
    groups
}

/// The gid of group `name` (or `name` itself when it is a number).
fn gid_of(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is to a live buffer of the size given.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access {
            admin_uids: vec![1000],
            admin_gids: vec![50],
            read_gids: vec![60],
            own_uid: 999,
        }
    }

    #[test]
    fn roles_by_uid_and_group() {
        let a = access();
        assert_eq!(a.role(0, &[]), Role::Admin, "root");
        assert_eq!(a.role(999, &[]), Role::Admin, "the daemon's own uid");
        assert_eq!(a.role(1000, &[1000]), Role::Admin);
        assert_eq!(a.role(1001, &[1001, 50]), Role::Admin);
        assert_eq!(a.role(1002, &[1002, 60]), Role::Read);
        assert_eq!(a.role(1003, &[1003, 60, 50]), Role::Admin);
        assert_eq!(a.role(1004, &[1004]), Role::None);
    }

    #[test]
    fn read_role_permits_only_reads() {
        assert!(Role::Read.permits(&Request::Status));
        assert!(Role::Read.permits(&Request::UserList));
        assert!(!Role::Read.permits(&Request::UserRemove { id: "a".into() }));
        assert!(!Role::None.permits(&Request::Status));
        assert!(Role::Admin.permits(&Request::UserRemove { id: "a".into() }));
    }

    #[test]
    fn proc_status_groups_line() {
        let status = "Name:\tx\nUid:\t1\t1\t1\t1\nGroups:\t4 24 27 \nNSpid:\t1\n";
        assert_eq!(proc_groups(status), Some(vec![4, 24, 27]));
        assert_eq!(proc_groups("Groups:\n"), Some(vec![]));
        assert_eq!(proc_groups("Name:\tx\n"), None);
    }

    #[test]
    fn group_names_resolve_or_name_the_key() {
        let ok = ControlSettings {
            admin_groups: vec!["root".into(), "4242".into()],
            ..Default::default()
        };
        assert_eq!(Access::resolve(&ok).unwrap().admin_gids, vec![0, 4242]);
        let bad = ControlSettings {
            read_groups: vec!["no-such-group-pw".into()],
            ..Default::default()
        };
        let e = Access::resolve(&bad).unwrap_err();
        assert!(
            e.contains("control.read_groups") && e.contains("no-such-group-pw"),
            "{e}"
        );
    }
}
