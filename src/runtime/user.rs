//! `-u USER[:GROUP]` and Dockerfile `USER`: who the workload runs as.
//!
//! Names mean what the *root filesystem* says they mean: they are looked
//! up in the root's /etc/passwd and /etc/group, not the host's (a uid's
//! name differs between images). pidlab is a static binary and uses no
//! NSS, so it reads the two files itself, as runc does (`libcontainer/user`,
//! `GetExecUser`):
//!
//! - USER is a name or a number. A name must be in /etc/passwd; a number
//!   need not be (`-u 1234` runs as uid 1234 even with no such entry).
//! - GROUP likewise, in /etc/group. Without GROUP, the primary group is
//!   the user's passwd entry's, or 0 for an unknown uid.
//! - Supplementary groups: without GROUP, every /etc/group entry that
//!   lists the user's name; with GROUP, none.
//! - HOME, when no ENV or `-e` set it: the passwd entry's home, else `/`.
//!
//! The switch happens in the child after the bounding set is dropped
//! (which needs CAP_SETPCAP) and before exec: setgroups(2), setgid(2),
//! setuid(2), in that order, since each later call gives up the right to
//! make the earlier ones. When the uid changes from 0 to another, the
//! kernel clears the permitted and effective capability sets
//! (capabilities(7), "Effect of user ID changes on capabilities"): a
//! non-root workload starts with no capabilities, as under Docker.

use std::path::Path;

use anyhow::{Result, bail};

/// The identity the workload runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

impl User {
    pub fn root() -> User {
        User { uid: 0, gid: 0, groups: Vec::new(), home: "/root".into() }
    }

    /// Resolve `spec` (`USER[:GROUP]`) with the root's passwd and group
    /// files (`None`: the root has no such file).
    pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User> {
        let (user_part, group_part) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user_part.is_empty() || group_part == Some("") {
            bail!("--user {spec:?}: write USER, USER:GROUP, UID or UID:GID");
        }
        let users = passwd.map(parse_passwd).unwrap_or_default();
        let entry = match number(user_part)? {
            Some(uid) => users.iter().find(|u| u.uid == uid).cloned(),
            None => Some(users.iter().find(|u| u.name == user_part).cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "--user {spec:?}: unable to find user {}: no matching entries in the root's \
                     /etc/passwd{}; give a number, or use a root that has the user",
                    crate::output::printable(user_part),
                    if passwd.is_none() { " (the root has none)" } else { "" }
                )
            })?),
        };
        let uid = match (&entry, number(user_part)?) {
            (_, Some(uid)) => uid,
            (Some(entry), None) => entry.uid,
            (None, None) => unreachable!("a name is found or refused above"),
        };
        let groups_file = group.map(parse_group).unwrap_or_default();
        let (gid, groups) = match group_part {
            Some(g) => {
                let gid = match number(g)? {
                    Some(gid) => gid,
                    None => groups_file.iter().find(|e| e.name == g).map(|e| e.gid).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--user {spec:?}: unable to find group {}: no matching entries in the root's /etc/group",
                            crate::output::printable(g)
                        )
                    })?,
                };
                (gid, Vec::new())
            }
            None => {
                let gid = entry.as_ref().map_or(0, |e| e.gid);
                let member_of = |name: &str| -> Vec<u32> {
                    groups_file
                        .iter()
                        .filter(|g| g.members.iter().any(|m| m == name))
                        .map(|g| g.gid)
                        .collect()
                };
                (gid, entry.as_ref().map(|e| member_of(&e.name)).unwrap_or_default())
            }
        };
        let home = entry.map_or_else(|| "/".to_string(), |e| e.home);
        Ok(User { uid, gid, groups, home })
    }

    /// uid 0, gid 0, no supplementary group: what the sandbox's PID 1
    /// already is, so there is nothing to switch.
    pub fn is_plain_root(&self) -> bool {
        self.uid == 0 && self.gid == 0 && self.groups.is_empty()
    }
}

/// A number in Docker's range (0 to 2^31 - 1), or `None` for a name.
fn number(text: &str) -> Result<Option<u32>> {
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(Some(n)),
        _ => bail!("--user: {text} is out of range: uids and gids must be in range 0-2147483647"),
    }
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `name:password:uid:gid:gecos:home:shell` lines; malformed ones skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map_or("/", |h| if h.is_empty() { "/" } else { h }).to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member` lines; malformed ones skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())?,
            })
        })
        .collect()
}

/// Become `user`: supplementary groups, group, user (see the module
/// comment for the order). Runs in the child, before exec.
pub fn switch(user: &User) -> nix::Result<()> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups)?;
    let gid = Gid::from_raw(user.gid);
    setresgid(gid, gid, gid)?;
    let uid = Uid::from_raw(user.uid);
    setresuid(uid, uid, uid)
}

/// Read `/etc/NAME` of the root at `root` ("/" for the host's), resolved
/// inside the root so a symbolic link in it cannot lead to a host file.
pub fn read_root_file(root: &Path, name: &str) -> Option<String> {
    crate::runtime::rootfs::read_in_root(root, Path::new("/etc").join(name).as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nredis:x:101:102::/var/lib/redis:/bin/false\n";
    const GROUP: &str = "root:x:0:\nredis:x:102:\nwheel:x:10:redis,other\n";

    #[test]
    fn names_numbers_and_groups_resolve_as_runc_does() {
        let r = |spec| User::resolve(spec, Some(PASSWD), Some(GROUP));
        let redis = r("redis").unwrap();
        assert_eq!(
            (redis.uid, redis.gid, redis.groups.clone(), redis.home.as_str()),
            (101, 102, vec![10], "/var/lib/redis")
        );
        assert_eq!(r("101").unwrap(), redis);
        let unknown = r("1234").unwrap();
        assert_eq!((unknown.uid, unknown.gid, unknown.home.as_str()), (1234, 0, "/"));
        assert_eq!(r("redis:wheel").unwrap().gid, 10);
        assert!(r("redis:wheel").unwrap().groups.is_empty());
        assert!(r("nobody").unwrap_err().to_string().contains("no matching entries"));
        // A name from a Dockerfile's USER is not the caller's: shown escaped.
        assert!(!r("x\x1b]0;T\x07y").unwrap_err().to_string().contains('\x1b'));
        assert!(!r("redis:\x1b[2J").unwrap_err().to_string().contains('\x1b'));
        assert!(r("redis:nogroup").is_err());
        assert!(r("4294967295").is_err());
        assert!(r(":1").is_err());
    }
}
