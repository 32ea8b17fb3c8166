//! Home directories for the async dir, without NSS: the programs are linked statically, so
//! homes come from `/etc/passwd` (and `$HOME` only for a user that has no entry there).
//!
//! Why the passwd home and not `$HOME`: ansible expands the `~` of `_async_dir` for
//! `async_status` on its own, with `echo ~<become user or remote user>` on the host (the
//! passwd home; on a local connection too), while the wrapper gets the dir unexpanded. A
//! task's `environment: {HOME: ...}`, `sudo -E` or `su` without a login shell change `$HOME`
//! but not the passwd home, so only the passwd home makes the wrapper and the poll agree.

use std::fs;
use std::path::{Path, PathBuf};

/// One line of `/etc/passwd`: a user name, its uid and its home.
#[derive(Clone, Debug, PartialEq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub home: String,
}

/// Every well-formed entry of `/etc/passwd` (none when it cannot be read).
pub fn passwd_entries() -> Vec<PasswdEntry> {
    let Ok(passwd) = fs::read_to_string("/etc/passwd") else {
        return Vec::new();
    };
    passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7).then_some(())?;
            Some(PasswdEntry {
                name: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                home: fields[5].to_string(),
            })
        })
        .collect()
}

/// The effective user's uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective user's home from `/etc/passwd`; `$HOME` only when the user has no entry.
pub fn effective_home() -> Option<String> {
    let euid = euid();
    passwd_entries()
        .into_iter()
        .find(|e| e.uid == euid && !e.home.is_empty())
        .map(|e| e.home)
        .or_else(env_home)
}

/// `$HOME` when set and not empty.
pub fn env_home() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| !h.is_empty())
}

/// Expands a leading `~`, `~user`, `$HOME` or `${HOME}` of an async dir setting: `~`,
/// `$HOME` and `${HOME}` are the effective user's passwd home ([`effective_home`]), `~user`
/// is user's passwd home. An unknown user (or no home at all) leaves the path as it is.
pub fn expand_user(path: &str) -> PathBuf {
    let (home, tail) = if let Some(rest) = path.strip_prefix('~') {
        let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let home = if name.is_empty() {
            effective_home()
        } else {
            passwd_entries().into_iter().find(|e| e.name == name).map(|e| e.home)
        };
        (home, tail)
    } else if let Some(tail) = strip_home_var(path) {
        (effective_home(), tail)
    } else {
        return PathBuf::from(path);
    };
    match home {
        Some(home) => join_home(&home, tail),
        None => PathBuf::from(path),
    }
}

/// The rest of `path` after a leading `$HOME` or `${HOME}` that is a whole path component.
fn strip_home_var(path: &str) -> Option<&str> {
    let tail = path.strip_prefix("${HOME}").or_else(|| path.strip_prefix("$HOME"))?;
    (tail.is_empty() || tail.starts_with('/')).then_some(tail)
}

/// `home` followed by `tail` (empty or starting with '/'), without a doubled '/'.
fn join_home(home: &str, tail: &str) -> PathBuf {
    let home = home.trim_end_matches('/');
    let home = if home.is_empty() && tail.is_empty() { "/" } else { home };
    PathBuf::from(format!("{home}{tail}"))
}

/// The part of `path` below `home` ("" for `home` itself), when `home` is a path prefix of it.
pub fn below_home<'a>(path: &'a Path, home: &str) -> Option<&'a Path> {
    let home = home.trim_end_matches('/');
    if home.is_empty() {
        return None; // a home of "/" is a prefix of everything: it says nothing
    }
    path.strip_prefix(home).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my_passwd_home() -> String {
        passwd_entries().into_iter().find(|e| e.uid == euid()).unwrap().home
    }

    #[test]
    fn leaves_plain_paths_alone() {
        assert_eq!(expand_user("/var/tmp/a"), PathBuf::from("/var/tmp/a"));
        assert_eq!(expand_user("rel/~x"), PathBuf::from("rel/~x"));
        assert_eq!(expand_user("$HOMEx/a"), PathBuf::from("$HOMEx/a"));
        assert_eq!(expand_user("/a/$HOME"), PathBuf::from("/a/$HOME"));
    }

    #[test]
    fn expands_the_passwd_home_of_the_effective_user_whatever_home_says() {
        // $HOME is not read when the user has a passwd entry (the test runner's HOME may be
        // anything: the assertion does not depend on it).
        let home = my_passwd_home();
        let home = home.trim_end_matches('/');
        assert_eq!(expand_user("~"), PathBuf::from(home));
        assert_eq!(expand_user("~/.ansible_async"), PathBuf::from(format!("{home}/.ansible_async")));
        assert_eq!(expand_user("$HOME/async"), PathBuf::from(format!("{home}/async")));
        assert_eq!(expand_user("${HOME}/async"), PathBuf::from(format!("{home}/async")));
        assert_eq!(expand_user("$HOME"), PathBuf::from(home));
    }

    #[test]
    fn expands_named_users_from_passwd() {
        assert_eq!(expand_user("~root/x"), PathBuf::from("/root/x"));
        assert_eq!(expand_user("~no-such-user-here/x"), PathBuf::from("~no-such-user-here/x"));
    }

    #[test]
    fn below_home_is_a_whole_component_prefix() {
        let p = Path::new("/home/al/.ansible_async");
        assert_eq!(below_home(p, "/home/al"), Some(Path::new(".ansible_async")));
        assert_eq!(below_home(p, "/home/al/"), Some(Path::new(".ansible_async")));
        assert_eq!(below_home(p, "/home/a"), None);
        assert_eq!(below_home(p, "/"), None);
    }
}
