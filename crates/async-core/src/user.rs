//! `~` expansion as Python's `os.path.expanduser`, without NSS: the programs are linked
//! statically, so home directories come from `$HOME` or `/etc/passwd`.

use std::fs;
use std::path::PathBuf;

/// Expands a leading `~` or `~user`. `~` is `$HOME` when set, else the running user's
/// entry in `/etc/passwd`; an unknown user leaves the path as it is, as Python does.
pub fn expand_user(path: &str) -> PathBuf {
    let Some(rest) = path.strip_prefix('~') else {
        return PathBuf::from(path);
    };
    let (name, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if name.is_empty() {
        std::env::var("HOME")
            .ok()
            .filter(|h| !h.is_empty())
            // SAFETY: getuid cannot fail.
            .or_else(|| passwd_home(|_, uid| uid == unsafe { libc::getuid() }))
    } else {
        passwd_home(|n, _| n == name)
    };
    match home {
        Some(home) => {
            let home = home.trim_end_matches('/');
            let home = if home.is_empty() && tail.is_empty() { "/" } else { home };
            PathBuf::from(format!("{home}{tail}"))
        }
        None => PathBuf::from(path),
    }
}

fn passwd_home(matches: impl Fn(&str, u32) -> bool) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let uid = fields.get(2)?.parse().ok()?;
        (fields.len() >= 7 && matches(fields[0], uid)).then(|| fields[5].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_plain_paths_alone() {
        assert_eq!(expand_user("/var/tmp/a"), PathBuf::from("/var/tmp/a"));
        assert_eq!(expand_user("rel/~x"), PathBuf::from("rel/~x"));
    }

    #[test]
    fn expands_home_of_the_running_user() {
        let home = std::env::var("HOME").unwrap();
        let home = home.trim_end_matches('/');
        assert_eq!(expand_user("~"), PathBuf::from(home));
        assert_eq!(expand_user("~/.ansible_async"), PathBuf::from(format!("{home}/.ansible_async")));
    }

    #[test]
    fn expands_named_users_from_passwd() {
        assert_eq!(expand_user("~root/x"), PathBuf::from("/root/x"));
        assert_eq!(expand_user("~no-such-user-here/x"), PathBuf::from("~no-such-user-here/x"));
    }
}
