//! The wrapper's command line, in both shapes ansible-core has used.
//!
//! - ansible-core ≤ 2.20: `JID TIME_LIMIT MODULE_PATH ARGS_FILE [-preserve_tmp]`; the wrapper
//!   runs `MODULE_PATH [ARGS_FILE]`, prefixed by the interpreter of the module's `#!` line.
//! - ansible-core ≥ 2.21: `JID TIME_LIMIT true|false MODULE_PATH CMD...`; `CMD...` is the
//!   whole command, built by the controller.
//!
//! In both, a `TIME_LIMIT` of 0 means the wrapper imposes no limit: ansible's gather_facts
//! passes 0 for facts modules that enforce their own `gather_timeout`.

use std::cell::OnceCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_core::output;
use async_core::rules::{self, fill, quote};

use crate::deadline::{self, Watchdog};

pub use async_core::rules::{MAX_TIME_LIMIT, WRAPPER_USAGE as USAGE};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// ansible-core ≤ 2.20.
    Legacy { args_file: Option<OsString> },
    /// ansible-core ≥ 2.21: the command to run, as given.
    Command { command: Vec<OsString> },
}

impl Protocol {
    /// How the job log names the protocol.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Legacy { .. } => "legacy",
            Protocol::Command { .. } => "command",
        }
    }

    /// The newest ansible-core (major, minor, patch) that speaks this protocol: the last
    /// patch of the minor before [`rules::COMMAND_PROTOCOL_SINCE`] for the legacy one, any
    /// later release for the command one.
    pub fn newest_version(&self) -> (u32, u32, u32) {
        let (major, minor) = rules::COMMAND_PROTOCOL_SINCE;
        match self {
            Protocol::Legacy { .. } => (major, minor - 1, u32::MAX),
            Protocol::Command { .. } => (u32::MAX, u32::MAX, u32::MAX),
        }
    }

    /// Which lines after the module's JSON earn the junk warning: the ansible-core that
    /// speaks this protocol decides (2.21 stopped warning about blank lines).
    pub fn junk(&self) -> output::Junk {
        match self {
            Protocol::Legacy { .. } => output::Junk::AnyLine,
            Protocol::Command { .. } => output::Junk::NonBlankLine,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// ansible's part of the job id; the wrapper adds `.PID`.
    pub jid: String,
    /// `None`: no limit (a `TIME_LIMIT` of 0).
    pub time_limit: Option<Duration>,
    /// Keep ansible's tmp dir (the module's folder) when the job is over.
    pub preserve_tmp: bool,
    pub module_path: PathBuf,
    pub protocol: Protocol,
    /// The files that hold the module's arguments, read once (see
    /// [`Invocation::scan_arguments`]): a launch asks them three things.
    arguments: OnceCell<Vec<Vec<u8>>>,
}

impl Invocation {
    pub fn parse(args: &[OsString]) -> Result<Invocation, String> {
        if args.len() < 4 {
            return Err(USAGE.into());
        }
        let jid = args[0]
            .to_str()
            .ok_or_else(|| format!("the job id {} is not valid UTF-8", quote(&args[0].to_string_lossy())))?
            .to_string();
        let time_limit = parse_time_limit(&args[1])?;
        let third = args[2].to_string_lossy().to_ascii_lowercase();
        if args.len() >= 5 && (third == "true" || third == "false") {
            return Ok(Invocation {
                jid,
                time_limit,
                preserve_tmp: third == "true",
                module_path: PathBuf::from(&args[3]),
                protocol: Protocol::Command { command: args[4..].to_vec() },
                arguments: OnceCell::new(),
            });
        }
        let module_path = PathBuf::from(&args[2]);
        let args_file = (args[3] != "_").then(|| args[3].clone());
        let preserve_tmp = args.get(4).is_some_and(|a| a == "-preserve_tmp");
        Ok(Invocation {
            jid,
            time_limit,
            // Only a folder ansible made for this task may be removed afterwards.
            preserve_tmp: preserve_tmp || !is_ansible_tmp_dir(&module_path),
            module_path,
            protocol: Protocol::Legacy { args_file },
            arguments: OnceCell::new(),
        })
    }

    /// The command that runs the module. In the legacy protocol the module's `#!`
    /// interpreter is run explicitly, so a module in a `noexec` tmp dir still runs.
    pub fn command(&self) -> io::Result<Vec<OsString>> {
        match &self.protocol {
            Protocol::Command { command } => Ok(command.clone()),
            Protocol::Legacy { args_file } => {
                let mut command = interpreter_of(&self.module_path)?;
                command.push(self.module_path.clone().into_os_string());
                command.extend(args_file.iter().cloned());
                Ok(command)
            }
        }
    }

    /// The command as ansible-core reports it in a failed result's `cmd`.
    pub fn display_command(&self) -> String {
        match &self.protocol {
            Protocol::Legacy { args_file } => {
                let mut cmd = self.module_path.to_string_lossy().into_owned();
                if let Some(args_file) = args_file {
                    cmd.push(' ');
                    cmd.push_str(&args_file.to_string_lossy());
                }
                cmd
            }
            Protocol::Command { command } => {
                command.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
            }
        }
    }

    /// The wrapper's arguments, for the syslog notice the stock wrapper also sends.
    pub fn display_args(&self) -> String {
        let mut args = vec![self.jid.clone(), self.time_limit_secs().to_string()];
        if let Protocol::Command { .. } = self.protocol {
            args.push(self.preserve_tmp.to_string());
        }
        args.push(self.module_path.to_string_lossy().into_owned());
        args.push(self.display_command());
        args.join(" ")
    }

    /// The time limit as given: seconds, 0 for none.
    pub fn time_limit_secs(&self) -> u64 {
        self.time_limit.map_or(0, |limit| limit.as_secs())
    }

    /// The watchdog ansible-core's own wrapper would have had for this job, told by the
    /// `_ansible_version` among the module's arguments; when none says, the one of the newest
    /// release that speaks this protocol.
    pub fn stock_watchdog(&self) -> Watchdog {
        self.scan_arguments(deadline::ansible_version_in)
            .map_or_else(|| Watchdog::of_version(self.protocol.newest_version()), Watchdog::of_version)
    }

    /// Whether the task is `no_log` (`_ansible_no_log` among the module's arguments); `None`
    /// where the arguments say nothing readable (ansible always states it; a module run by
    /// hand may not). The job's progress takes `None` as `no_log` (it then shows no command
    /// lines); holding a result that holds secrets takes only a stated `no_log`.
    pub fn no_log_stated(&self) -> Option<bool> {
        self.scan_arguments(no_log_in)
    }

    /// Whether the module's arguments hold values the controller knows to be secrets:
    /// ansible-core 2.22 writes them into the AnsiballZ wrapper (`secrets=frozenset({...})`)
    /// so that the module does not list them again as new, and its result may hold them
    /// with no `_ansible_new_secrets` to say so (a vaulted password, a secret an earlier task
    /// returned). `false` where nothing says (earlier ansible-core, other kinds of modules).
    pub fn arguments_hold_secrets(&self) -> bool {
        self.scan_arguments(known_secrets_in).unwrap_or(false)
    }

    /// The first answer of `find` in the files that hold the module's arguments: its
    /// arguments file (see [`Invocation::args_files`]), then the module file itself (AnsiballZ
    /// carries them inside). Each file is read once, on the first call.
    fn scan_arguments<T>(&self, find: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
        let texts = self.arguments.get_or_init(|| {
            let read = |path: &Path| {
                let mut text = Vec::new();
                File::open(path).ok()?.take(MAX_SCANNED).read_to_end(&mut text).ok()?;
                Some(text)
            };
            self.args_files().into_iter().chain([self.module_path.as_path()]).filter_map(read).collect()
        });
        texts.iter().find_map(|text| find(text))
    }

    /// Where the module's arguments file may be: the legacy protocol's fourth argument; in
    /// the command protocol, what the command names after the module (ansible puts the
    /// arguments file of a binary, WANT_JSON or old-style module last).
    fn args_files(&self) -> Vec<&Path> {
        match &self.protocol {
            Protocol::Legacy { args_file } => args_file.iter().map(Path::new).collect(),
            Protocol::Command { command } => command
                .iter()
                .skip_while(|word| Path::new(word) != self.module_path)
                .skip(1)
                .map(Path::new)
                .collect(),
        }
    }

    /// The folder to remove when the job is over, if any: the module's folder, when it is
    /// an ansible tmp dir and ansible did not ask to keep it.
    pub fn tmp_dir_to_remove(&self) -> Option<&Path> {
        if self.preserve_tmp || !is_ansible_tmp_dir(&self.module_path) {
            return None;
        }
        self.module_path.parent()
    }
}

/// How much of a module file is searched for its arguments: AnsiballZ files are a few
/// hundred KB; a large binary module has none.
const MAX_SCANNED: u64 = 8 << 20;

/// The task's `no_log` as written anywhere in `text` (JSON, a Python literal holding JSON,
/// or `key=value` words); `None` when `text` does not say. Every mention counts and any that
/// says yes wins: a module argument whose text mentions the key cannot turn it off.
pub fn no_log_in(text: &[u8]) -> Option<bool> {
    const KEY: &[u8] = b"_ansible_no_log";
    let mut found = None;
    let mut rest = text;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let Some(skip) = rest.iter().take(8).position(|b| !b"\"'\\:= ".contains(b)) else { continue };
        match rest[skip] {
            b't' | b'T' | b'1' | b'y' | b'Y' => return Some(true),
            b'f' | b'F' | b'0' | b'n' | b'N' => found = Some(false),
            _ => {}
        }
    }
    found
}

/// Whether an AnsiballZ wrapper's `secrets=` argument (ansible-core 2.22: the secrets the
/// controller knows among the module's arguments) lists any; `None` when `text` has none.
pub fn known_secrets_in(text: &[u8]) -> Option<bool> {
    const KEY: &[u8] = b"\nsecrets=frozenset(";
    let at = text.windows(KEY.len()).position(|w| w == KEY)?;
    Some(text.get(at + KEY.len()) != Some(&b')'))
}

/// A whole number of seconds up to [`MAX_TIME_LIMIT`]; 0 is no limit (`None`).
fn parse_time_limit(arg: &OsStr) -> Result<Option<Duration>, String> {
    let text = arg.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(secs) if secs <= MAX_TIME_LIMIT => Ok(Some(Duration::from_secs(secs))),
        _ => Err(fill(rules::BAD_TIME_LIMIT, &[("max", &MAX_TIME_LIMIT), ("value", &quote(&text))])),
    }
}

/// ansible names its per-task folders `ansible-tmp-<time>-<pid>-<random>`.
fn is_ansible_tmp_dir(module_path: &Path) -> bool {
    module_path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name.as_bytes().windows(5).any(|w| w == b"-tmp-"))
}

/// The interpreter and its arguments from a `#!` line in the first 1 KiB of `path`;
/// nothing for a file without one (a binary module runs directly).
fn interpreter_of(path: &Path) -> io::Result<Vec<OsString>> {
    let mut head = Vec::with_capacity(1024);
    File::open(path)?.take(1024).read_to_end(&mut head)?;
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(Vec::new());
    };
    let end = line.iter().position(|&b| b == b'\n').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: the #! line is longer than 1 KiB", path.display()),
        )
    })?;
    Ok(line[..end]
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(|word| OsString::from_vec(word.to_vec()))
        .collect())
}

/// Python's `shlex.quote`.
fn shell_quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    let safe = |c: char| c.is_alphanumeric() || "_@%+=:,./-".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn legacy_protocol() {
        let inv = Invocation::parse(&args(&[
            "j1",
            "30",
            "/h/.ansible/tmp/ansible-tmp-1-2-3/AnsiballZ_command.py",
            "/h/.ansible/tmp/ansible-tmp-1-2-3/args",
        ]))
        .unwrap();
        assert_eq!(inv.jid, "j1");
        assert_eq!(inv.time_limit, Some(Duration::from_secs(30)));
        assert!(!inv.preserve_tmp);
        assert_eq!(inv.tmp_dir_to_remove(), Some(Path::new("/h/.ansible/tmp/ansible-tmp-1-2-3")));
        assert_eq!(
            inv.display_command(),
            "/h/.ansible/tmp/ansible-tmp-1-2-3/AnsiballZ_command.py /h/.ansible/tmp/ansible-tmp-1-2-3/args"
        );
    }

    #[test]
    fn legacy_preserve_flags() {
        let tmp = "/h/.ansible/tmp/ansible-tmp-1-2-3/m";
        let inv = Invocation::parse(&args(&["j1", "5", tmp, "_", "-preserve_tmp"])).unwrap();
        assert!(inv.preserve_tmp);
        assert_eq!(inv.protocol, Protocol::Legacy { args_file: None });
        // A module outside an ansible tmp dir: its folder is never removed.
        let inv = Invocation::parse(&args(&["j1", "5", "/usr/local/bin/m", "_"])).unwrap();
        assert!(inv.preserve_tmp);
        assert_eq!(inv.tmp_dir_to_remove(), None);
    }

    #[test]
    fn command_protocol() {
        let inv = Invocation::parse(&args(&[
            "j2",
            "7",
            "false",
            "/t/ansible-tmp-1/AnsiballZ_x.py",
            "/usr/bin/python3",
            "/t/ansible-tmp-1/AnsiballZ_x.py",
        ]))
        .unwrap();
        assert!(!inv.preserve_tmp);
        assert_eq!(inv.protocol.name(), "command");
        assert_eq!(inv.command().unwrap(), args(&["/usr/bin/python3", "/t/ansible-tmp-1/AnsiballZ_x.py"]));
        assert_eq!(inv.display_command(), "/usr/bin/python3 /t/ansible-tmp-1/AnsiballZ_x.py");
        let inv =
            Invocation::parse(&args(&["j2", "7", "True", "/t/ansible-tmp-1/m", "/t/m", "it's"])).unwrap();
        assert!(inv.preserve_tmp);
        assert_eq!(inv.tmp_dir_to_remove(), None);
        assert_eq!(inv.display_command(), "/t/m 'it'\"'\"'s'");
    }

    #[test]
    fn bad_command_lines() {
        assert_eq!(Invocation::parse(&args(&["j1", "5", "/m"])).unwrap_err(), USAGE);
        let err = Invocation::parse(&args(&["j1", "soon", "/m", "_"])).unwrap_err();
        assert_eq!(
            err,
            "the time limit must be a whole number of seconds from 0 (no limit) to 315576000 (10 years), \
             got: \"soon\""
        );
        for bad in ["-3", "-0.5", "1.5", "", "315576001", "18446744073709551615", "99999999999999999999999"] {
            let err = Invocation::parse(&args(&["j1", bad, "/m", "_"])).unwrap_err();
            assert!(err.starts_with("the time limit must be"), "{bad}: {err}");
        }
        let err = Invocation::parse(&args(&["j1", "-1", "false", "/m", "/m"])).unwrap_err();
        assert!(err.starts_with("the time limit must be"), "{err}");
    }

    #[test]
    fn zero_is_no_limit_in_both_protocols() {
        let legacy = Invocation::parse(&args(&["j1", "0", "/m", "_"])).unwrap();
        assert_eq!(legacy.time_limit, None);
        assert_eq!(legacy.time_limit_secs(), 0);
        let command = Invocation::parse(&args(&["j1", " 0 ", "false", "/m", "/m"])).unwrap();
        assert_eq!(command.protocol.name(), "command");
        assert_eq!(command.time_limit, None);
        let longest = Invocation::parse(&args(&["j1", "315576000", "/m", "_"])).unwrap();
        assert_eq!(longest.time_limit, Some(Duration::from_secs(MAX_TIME_LIMIT)));
    }

    #[test]
    fn the_version_is_read_from_the_arguments_file_each_protocol_names() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("AnsiballZ_slow");
        fs::write(&module, "#!/bin/sh\nsleep 3\n").unwrap();
        let words = dir.path().join("args");
        fs::write(&words, "_ansible_check_mode=False _ansible_version=2.21.1 _ansible_debug=False ").unwrap();
        let (m, w) = (module.to_str().unwrap(), words.to_str().unwrap());
        // ansible-core 2.21's command for an old-style shell script: interpreter, module, args.
        // (A new invocation each time: one reads the files once.)
        let command = || Invocation::parse(&args(&["j", "1", "false", m, "/bin/sh", m, w])).unwrap();
        let legacy = || Invocation::parse(&args(&["j", "1", m, w])).unwrap();
        assert_eq!(command().stock_watchdog(), Watchdog::Trailing);
        assert_eq!(legacy().stock_watchdog(), Watchdog::Trailing);
        fs::write(&words, "{\"_ansible_version\": \"2.21.5\"}").unwrap();
        assert_eq!(command().stock_watchdog(), Watchdog::Halving);
        // None found: the newest release that speaks the protocol (2.20's last, or any later).
        fs::write(&words, "x=1").unwrap();
        assert_eq!(command().stock_watchdog(), Watchdog::Halving);
        assert_eq!(legacy().stock_watchdog(), Watchdog::Halving);
        let legacy = legacy();
        let no_args = Invocation::parse(&args(&["j", "1", "false", m, "/bin/sh", m])).unwrap();
        assert_eq!(no_args.stock_watchdog(), Watchdog::Halving);
        assert_eq!(legacy.protocol.newest_version(), (2, 20, u32::MAX));
    }

    #[test]
    fn secrets_the_controller_knows_are_read_from_the_ansiballz_wrapper() {
        let wrapper = |secrets: &str| {
            format!("    _ansiballz_main(\nparams='{{}}',\nsecrets={secrets},\nzip_data='x',\n")
        };
        assert_eq!(known_secrets_in(wrapper("frozenset()").as_bytes()), Some(false));
        assert_eq!(known_secrets_in(wrapper("frozenset({'pw'})").as_bytes()), Some(true));
        assert_eq!(known_secrets_in(b"ANSIBALLZ_PARAMS = '{}'"), None);
        // Only a line of the wrapper's own counts, not a module argument's text.
        assert_eq!(known_secrets_in(br#"{"msg": "\nsecrets=frozenset({'x'})"}"#), None);
    }

    #[test]
    fn no_log_is_read_wherever_ansible_wrote_the_arguments() {
        let cases: [(&[u8], Option<bool>); 8] = [
            (br#"{"_ansible_no_log": true, "x": 1}"#, Some(true)),
            (br#"{"_ansible_no_log": false}"#, Some(false)),
            (br#"ANSIBALLZ_PARAMS = '{"ANSIBLE_MODULE_ARGS": {"_ansible_no_log": true}}'"#, Some(true)),
            (br#"params = "{\"_ansible_no_log\": false}""#, Some(false)),
            (b"_raw_params='sleep 1' _ansible_no_log=True _ansible_debug=False", Some(true)),
            (b"_ansible_no_log=False", Some(false)),
            // A command that mentions the key cannot turn a real `true` off.
            (br#"{"_raw_params": "echo _ansible_no_log: false", "_ansible_no_log": true}"#, Some(true)),
            (b"nothing here", None),
        ];
        for (text, expected) in cases {
            assert_eq!(no_log_in(text), expected, "{}", String::from_utf8_lossy(text));
        }
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("AnsiballZ_command.py");
        let args_file = dir.path().join("args");
        fs::write(&module, "#!/usr/bin/python3\n# no arguments in here\n").unwrap();
        fs::write(&args_file, r#"{"_ansible_no_log": false}"#).unwrap();
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let legacy = Invocation::parse(&args(&["j", "5", &path(&module), &path(&args_file)])).unwrap();
        assert_eq!(legacy.no_log_stated(), Some(false));
        let command = Invocation::parse(&args(&[
            "j",
            "5",
            "false",
            &path(&module),
            "/bin/sh",
            &path(&module),
            &path(&args_file),
        ]))
        .unwrap();
        assert_eq!(command.no_log_stated(), Some(false));
        // Nothing says.
        let none = Invocation::parse(&args(&["j", "5", &path(&module), "_"])).unwrap();
        assert_eq!(none.no_log_stated(), None);
        fs::write(
            &module,
            r#"#!/usr/bin/python3
ANSIBALLZ_PARAMS = '{"ANSIBLE_MODULE_ARGS": {"_ansible_no_log": false}}'"#,
        )
        .unwrap();
        let ansiballz = Invocation::parse(&args(&[
            "j",
            "5",
            "false",
            &path(&module),
            "/usr/bin/python3",
            &path(&module),
        ]))
        .unwrap();
        assert_eq!(ansiballz.no_log_stated(), Some(false));
    }

    #[test]
    fn legacy_prefixes_the_shebang_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m");
        fs::write(&module, "#!/usr/bin/env  python3 -u\nprint()\n").unwrap();
        let inv =
            Invocation::parse(&["j".into(), "1".into(), module.clone().into_os_string(), "/a r g s".into()])
                .unwrap();
        let mut expected = args(&["/usr/bin/env", "python3", "-u"]);
        expected.push(module.clone().into_os_string());
        expected.push("/a r g s".into());
        assert_eq!(inv.command().unwrap(), expected);

        fs::write(&module, b"\x7fELF\x02\x01").unwrap();
        assert_eq!(inv.command().unwrap(), vec![module.clone().into_os_string(), "/a r g s".into()]);

        fs::remove_file(&module).unwrap();
        assert_eq!(inv.command().unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
