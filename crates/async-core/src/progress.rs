//! What a running job is doing, read from `/proc` when its status is asked for: the
//! `progress` of a running job's status (`async_status`, the `poll:` loop, `async_job`).
//!
//! A job's processes are the module's process group and every descendant of its supervisor
//! (a child subreaper: whatever the module leaves behind is reparented to it), the
//! supervisor itself left out. From them:
//!
//! - `processes`: the [`MAX_PROCESSES`] newest, each with `pid`, `ppid`, `name`, `args` (the
//!   command line, cut to [`MAX_ARGS`] characters), `state`, `cpu` (seconds), `rss` (bytes)
//!   and `age` (seconds);
//! - `totals`: `count`, `cpu`, `rss` of them all, and `read_bytes` / `write_bytes` (storage
//!   I/O, `/proc/PID/io`) summed over the processes whose counters the user may read;
//! - `writing`: up to [`MAX_WRITING`] regular files they hold open for writing, newest
//!   modification first, with `path`, `size` and `mtime` (seconds since the epoch); not
//!   devices, not the supervisor's own unlinked files that capture the module's output;
//! - `tail`: the last lines of the file the task named in `ASYNC_WRAPPER_TAIL` (at most
//!   [`TAIL_LINES`] lines of its last [`TAIL_BYTES`] bytes), or `error` saying why not.
//!
//! For a `no_log` task there is no `args` and no `tail`, only names, states and figures:
//! ansible does not censor the results of the poll loop.
//!
//! Everything is best effort: a process that exits while it is read, a file the user may not
//! read, a host without `/proc` give less, never an error. The whole is kept under
//! [`MAX_BYTES`] of JSON. Cost (docs/PROGRESS.md has the figures): the job's processes are
//! found among those started since the supervisor ([`PidWindow`], listed from the
//! supervisor's pid up: [`Reader::pids_from`]), by reading each one's `/proc/PID/stat`, or
//! when they are more than [`SCAN_MAX`], by a [`walk`] down the supervisor's `children` files;
//! each read an `openat` and a `read` into a buffer kept, the files closed by the batch
//! ([`Reader`]). Then the `io` of the listed processes and of those that have used CPU
//! time ([`has_run`]), and the open files (at most [`MAX_FDS`] each) of the
//! [`MAX_FD_PROCESSES`] newest of them that have written anything ([`may_be_writing`]).

use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::record::Running;

/// Processes listed, newest first.
pub const MAX_PROCESSES: usize = 8;
/// Characters of a command line kept.
pub const MAX_ARGS: usize = 200;
/// Files listed in `writing`.
pub const MAX_WRITING: usize = 5;
/// Characters of a path kept (its end: the file's name matters most).
pub const MAX_PATH: usize = 200;
/// Lines and bytes of the tail.
pub const TAIL_LINES: usize = 5;
pub const TAIL_BYTES: u64 = 1024;
/// The most `progress` takes as JSON text.
pub const MAX_BYTES: usize = 4096;
/// Open files looked at per process, and how many of the newest processes are looked at.
pub const MAX_FDS: usize = 256;
pub const MAX_FD_PROCESSES: usize = 32;

/// One process as read from `/proc/PID/stat`. Read for every process of the host, so it
/// holds its name inline: reading it allocates nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub pid: u32,
    name: [u8; NAME_BYTES],
    name_len: u8,
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// Clock ticks of CPU, user and system.
    pub ticks: u64,
    /// Clock ticks of CPU of the children it waited for (and theirs).
    pub reaped_ticks: u64,
    /// Clock ticks after boot at which it started.
    pub start_time: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// Its threads.
    pub threads: u64,
}

/// Bytes of a process's name kept (the kernel's `comm` has 15; a kernel thread's may be longer).
const NAME_BYTES: usize = 32;

impl Stat {
    /// Parses the text of `/proc/PID/stat`; the name may hold spaces and parentheses.
    pub fn parse(text: &str) -> Option<Stat> {
        Stat::parse_bytes(text.as_bytes())
    }

    /// [`Stat::parse`] of the file's bytes as read: only the name need be text (a name that
    /// is not UTF-8 is read as its lossy text); the numbers are read as bytes.
    pub fn parse_bytes(text: &[u8]) -> Option<Stat> {
        let open = text.iter().position(|&b| b == b'(')?;
        let close = text.iter().rposition(|&b| b == b')')?;
        let pid = u32::try_from(decimal(text[..open].trim_ascii())?).ok()?;
        let full_name = String::from_utf8_lossy(text.get(open + 1..close)?);
        let mut end = full_name.len().min(NAME_BYTES);
        while !full_name.is_char_boundary(end) {
            end -= 1;
        }
        let mut name = [0u8; NAME_BYTES];
        name[..end].copy_from_slice(&full_name.as_bytes()[..end]);
        // Fields 3 to 24 of proc(5).
        let mut fields: [&[u8]; 22] = [b""; 22];
        let mut count = 0;
        let words = text[close + 1..].split(u8::is_ascii_whitespace).filter(|word| !word.is_empty());
        for (slot, word) in fields.iter_mut().zip(words) {
            *slot = word;
            count += 1;
        }
        if count < fields.len() {
            return None;
        }
        let field = |n: usize| decimal(fields[n - 3]);
        Some(Stat {
            pid,
            name,
            name_len: end as u8,
            state: char::from(*fields[0].first()?),
            ppid: u32::try_from(field(4)?).ok()?,
            pgrp: u32::try_from(field(5)?).ok()?,
            ticks: field(14)? + field(15)?,
            reaped_ticks: field(16)? + field(17)?,
            threads: field(20)?,
            start_time: field(22)?,
            rss_pages: field(24)?,
        })
    }

    /// The process's name (`comm`), its first 32 bytes.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }

    fn read(pid: u32, reader: &mut Reader) -> Option<Stat> {
        Stat::parse_bytes(reader.read_bytes(pid, "stat")?)
    }
}

/// The number written in decimal digits `digits` (nothing else: no sign, no space).
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &digit| {
        let digit = char::from(digit).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Reads `/proc` with bare system calls into a buffer it keeps. A status call reads a few
/// hundred small files, and each system call costs microseconds on a virtual machine: a file
/// is an `openat` and one `read`; a folder an `openat` and `getdents64` calls. The files read
/// are closed [`UNCLOSED`] at a time. Nothing is allocated per file (std's `read_dir`
/// allocates a buffer per folder, which musl's allocator hands back to the kernel each time:
/// an `mmap` and a `munmap` more). A path under `/proc/` is opened relative to a descriptor
/// of `/proc` it holds: the kernel walks one name less for each file.
pub struct Reader {
    path: String,
    data: [u8; 4096],
    proc: Option<OwnedFd>,
    /// Descriptors read to their end and not closed yet (at most [`UNCLOSED`]).
    unclosed: Vec<libc::c_int>,
}

/// Files read are closed by the [`UNCLOSED`]: one `close_range` for a run of descriptors in a
/// row (as the kernel hands out the lowest free), not a `close` each.
pub const UNCLOSED: usize = 64;

impl Reader {
    pub fn new() -> Reader {
        // SAFETY: a constant path ending with a NUL. (`openat`: musl's `open` spends a `fcntl`
        // call on O_CLOEXEC.)
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let fd = unsafe { libc::openat(libc::AT_FDCWD, c"/proc".as_ptr(), flags) };
        // SAFETY: a descriptor `open` just returned is ours alone; dropping it closes it.
        let proc = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        Reader { path: String::with_capacity(64), data: [0; 4096], proc, unclosed: Vec::new() }
    }

    /// Closes `fd` with others later.
    fn done(&mut self, fd: OwnedFd) {
        if self.unclosed.capacity() == 0 {
            self.unclosed.reserve_exact(UNCLOSED);
        }
        self.unclosed.push(fd.into_raw_fd());
        if self.unclosed.len() >= UNCLOSED {
            self.close_all();
        }
    }

    /// Closes the descriptors kept open: each run of consecutive numbers with one
    /// `close_range` (Linux 5.9), or with a `close` each where that fails.
    fn close_all(&mut self) {
        let fds = &self.unclosed;
        let mut start = 0;
        while start < fds.len() {
            let mut end = start;
            while end + 1 < fds.len() && fds[end + 1] == fds[end] + 1 {
                end += 1;
            }
            let (first, last) = (fds[start], fds[end]);
            // SAFETY: the descriptors from `first` to `last` are all ours (each is in
            // `unclosed`, none closed since), and closed once.
            let ranged = end > start
                && unsafe {
                    libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0)
                } == 0;
            if !ranged {
                for &fd in &fds[start..=end] {
                    // SAFETY: as above.
                    unsafe { libc::close(fd) };
                }
            }
            start = end + 1;
        }
        self.unclosed.clear();
    }

    /// The text of `/proc/<pid>/<file>` (its first 4 KB), if it can be read.
    pub fn read(&mut self, pid: u32, file: &str) -> Option<&str> {
        std::str::from_utf8(self.read_bytes(pid, file)?).ok()
    }

    /// The bytes of `/proc/<pid>/<file>` (its first 4 KB), if it can be read.
    pub fn read_bytes(&mut self, pid: u32, file: &str) -> Option<&[u8]> {
        self.read_path(format_args!("/proc/{pid}/{file}"))
    }

    /// The text of a file of `/proc` that is not a process's (`/proc/uptime`).
    fn read_text(&mut self, path: &str) -> Option<&str> {
        std::str::from_utf8(self.read_path(format_args!("{path}"))?).ok()
    }

    fn read_path(&mut self, path: fmt::Arguments) -> Option<&[u8]> {
        let fd = self.open(path, libc::O_RDONLY)?;
        // SAFETY: `data` is ours and as long as the length given.
        let n = unsafe { libc::read(fd.as_raw_fd(), self.data.as_mut_ptr().cast(), self.data.len()) };
        self.done(fd);
        self.data.get(..usize::try_from(n).ok()?)
    }

    /// The names of the folder `/proc/<path>` that are numbers (pids in `/proc`, descriptors in
    /// `/proc/PID/fd`), in the folder's order, at most `max`.
    pub fn numbers(&mut self, path: fmt::Arguments, max: usize) -> Vec<u32> {
        match self.open(path, libc::O_RDONLY | libc::O_DIRECTORY) {
            Some(dir) => self.list(&dir, max),
            None => Vec::new(),
        }
    }

    /// The pids of `/proc` from `first` up, in increasing order, `first` a process that is
    /// alive: the listing starts at `first`'s entry, so the host's older processes are not
    /// listed. `/proc` gives the entry of pid N the offset N + [`PROC_PID_OFFSET`], and a
    /// folder may be read on from an offset it gave. `None` when the listing does not begin
    /// with `first` (it ended since, or another layout): then list all of `/proc`.
    pub fn pids_from(&mut self, first: u32) -> Option<Vec<u32>> {
        let dir = self.open(format_args!("/proc"), libc::O_RDONLY | libc::O_DIRECTORY)?;
        let offset = i64::from(first) + PROC_PID_OFFSET;
        // SAFETY: `dir` is open; lseek reads no memory of ours.
        if unsafe { libc::lseek(dir.as_raw_fd(), offset, libc::SEEK_SET) } != offset {
            return None;
        }
        let found = self.list(&dir, usize::MAX);
        (found.first() == Some(&first)).then_some(found)
    }

    /// The names that are numbers in the open folder `dir`, from where it is, at most `max`.
    fn list(&mut self, dir: &OwnedFd, max: usize) -> Vec<u32> {
        // Room for a host's processes at once: a vector that grows is copied, and freed
        // memory goes back to the kernel.
        let mut found = Vec::with_capacity(max.min(1024));
        while found.len() < max {
            // SAFETY: `data` is ours and as long as the length given; `dir` is open.
            let n = unsafe {
                libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), self.data.as_mut_ptr(), self.data.len())
            };
            let Some(entries) = usize::try_from(n).ok().filter(|&n| n > 0).and_then(|n| self.data.get(..n))
            else {
                break;
            };
            found.extend(
                dirent_names(entries).filter_map(|name| std::str::from_utf8(name).ok()?.parse::<u32>().ok()),
            );
        }
        found.truncate(max);
        found
    }

    /// Where the descriptor `fd` of `pid` points (`/proc/PID/fd/FD`'s link: a path, or
    /// `pipe:[N]`, `socket:[N]`...), its first 4 KB.
    pub fn link(&mut self, pid: u32, fd: u32) -> Option<&str> {
        let (dir, path) = self.at(format_args!("/proc/{pid}/fd/{fd}"));
        // SAFETY: `path` ends with a NUL; `data` is ours and as long as the length given.
        let n = unsafe { libc::readlinkat(dir, path, self.data.as_mut_ptr().cast(), self.data.len()) };
        std::str::from_utf8(self.data.get(..usize::try_from(n).ok()?)?).ok()
    }

    /// The status (`stat(2)`) of the file the descriptor `fd` of `pid` is open on.
    pub fn target(&mut self, pid: u32, fd: u32) -> Option<libc::stat> {
        let (dir, path) = self.at(format_args!("/proc/{pid}/fd/{fd}"));
        let mut status = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `path` ends with a NUL; `fstatat` fills `status` when it returns 0.
        (unsafe { libc::fstatat(dir, path, status.as_mut_ptr(), 0) } == 0)
            .then(|| unsafe { status.assume_init() })
    }

    /// `path` as the `*at` calls take it: relative to the descriptor of `/proc` when it is
    /// under `/proc` (`/proc` itself: `.`), with a NUL at its end (in `self.path`).
    fn at(&mut self, path: fmt::Arguments) -> (libc::c_int, *const libc::c_char) {
        self.path.clear();
        let _ = self.path.write_fmt(path);
        self.path.push('\0');
        let relative = match &self.proc {
            Some(proc) if self.path == "/proc\0" => Some((proc.as_raw_fd(), c".".as_ptr())),
            Some(proc) => {
                self.path.strip_prefix("/proc/").map(|rest| (proc.as_raw_fd(), rest.as_ptr().cast()))
            }
            None => None,
        };
        relative.unwrap_or((libc::AT_FDCWD, self.path.as_ptr().cast()))
    }

    fn open(&mut self, path: fmt::Arguments, flags: libc::c_int) -> Option<OwnedFd> {
        let (dir, path) = self.at(path);
        // O_CLOEXEC costs nothing with `openat` (musl's `open` spends a `fcntl` call on it).
        let flags = flags | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: `path` ends with a NUL.
        let mut fd = unsafe { libc::openat(dir, path, flags) };
        if fd < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EMFILE)
            && !self.unclosed.is_empty()
        {
            // Out of descriptors: close those kept open and try again.
            self.close_all();
            // SAFETY: as above; `path` still points into `self.path`, unchanged.
            fd = unsafe { libc::openat(dir, path, flags) };
        }
        // SAFETY: a descriptor `open` just returned is ours alone; dropping it closes it.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.close_all();
    }
}

impl Default for Reader {
    fn default() -> Reader {
        Reader::new()
    }
}

/// What `/proc`'s folder offset of a pid's entry adds to the pid (`TGID_OFFSET` of the
/// kernel's fs/proc/base.c, the same since Linux 2.6: 256 entries of its own, `self`,
/// `thread-self`).
pub const PROC_PID_OFFSET: i64 = 258;

/// The names in what `getdents64` returned: `struct linux_dirent64` records (an 8-byte inode
/// number, an 8-byte offset, a 2-byte record length, a type byte, the name ended by a NUL).
pub fn dirent_names(mut entries: &[u8]) -> impl Iterator<Item = &[u8]> {
    const NAME_AT: usize = 19;
    std::iter::from_fn(move || {
        let length = usize::from(u16::from_ne_bytes([*entries.get(16)?, *entries.get(17)?]));
        let record = entries.get(..length).filter(|_| length > NAME_AT)?;
        entries = &entries[length..];
        let name = &record[NAME_AT..];
        Some(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())])
    })
}

/// The word for a state letter of `/proc/PID/stat`.
pub fn state_word(state: char) -> &'static str {
    match state {
        'R' => "running",
        'D' => "disk wait",
        'T' | 't' => "stopped",
        'Z' | 'X' | 'x' => "zombie",
        _ => "sleeping",
    }
}

/// The job's processes among `all`: the group `module_group` and every descendant of
/// `supervisor`, not the supervisor; newest first.
pub fn job_processes(all: &[Stat], supervisor: u32, module_group: Option<u32>) -> Vec<&Stat> {
    // Plain vectors, not hash sets: a few hundred entries, and no hashing code in a program
    // copied to every host. `member[i]`: `all[i]` descends from the supervisor.
    let mut member = vec![false; all.len()];
    let mut frontier = Vec::with_capacity(all.len());
    frontier.push(supervisor);
    while let Some(parent) = frontier.pop() {
        for (i, stat) in all.iter().enumerate() {
            if stat.ppid == parent && stat.pid != supervisor && !member[i] {
                member[i] = true;
                frontier.push(stat.pid);
            }
        }
    }
    // Sorted by their keys, not moved about whole (a `Stat` is a hundred bytes); from the
    // last, as a scan finds them by increasing pid, mostly the order they started in: the
    // newest first then takes few steps.
    let mut order: Vec<((u64, u32), usize)> = (0..all.len())
        .rev()
        .filter(|&i| all[i].pid != supervisor && (member[i] || Some(all[i].pgrp) == module_group))
        .map(|i| ((all[i].start_time, all[i].pid), i))
        .collect();
    sort_descending(&mut order, |&(key, _)| key);
    order.into_iter().map(|(_, i)| &all[i]).collect()
}

/// Sorts `items` by `key`, largest first, keeping the order of equal ones: an insertion sort,
/// as the lists are short and std's sorts add kilobytes to a program copied to every host.
pub fn sort_descending<T, K: PartialOrd>(items: &mut [T], key: impl Fn(&T) -> K) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && key(&items[j - 1]) < key(&items[j]) {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// `text` cut to `max` characters, with `…` where it was cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// `path` cut to its last `max` characters, with `…` where it was cut.
pub fn cut_start(path: &str, max: usize) -> String {
    let count = path.chars().count();
    if count <= max {
        return path.to_string();
    }
    let start = path.char_indices().nth(count - max).map_or(0, |(at, _)| at);
    format!("…{}", &path[start..])
}

/// A command line from `/proc/PID/cmdline`: its words joined by spaces.
pub fn command_line(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    String::from_utf8_lossy(raw).replace('\0', " ")
}

/// The last lines of `data`, the end of a file (`from_start`: `data` is the whole file):
/// at most [`TAIL_LINES`], the first one dropped when the read began inside it.
pub fn last_lines(data: &[u8], from_start: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    if !from_start && lines.len() > 1 {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(TAIL_LINES);
    lines[skip..].iter().map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect()
}

/// The tail of `path`: `{"path", "lines"}`, or `{"path", "error"}` when it cannot be read.
/// Never blocks: a FIFO or a device is refused, not read.
pub fn tail(path: &str) -> Value {
    match read_tail(Path::new(path)) {
        Ok(lines) => json!({"path": path, "lines": lines}),
        Err(e) => json!({"path": path, "error": why(&e)}),
    }
}

fn read_tail(path: &Path) -> io::Result<Vec<String>> {
    let mut file =
        fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let start = meta.len().saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::with_capacity(TAIL_BYTES as usize);
    file.take(TAIL_BYTES).read_to_end(&mut data)?;
    Ok(last_lines(&data, start == 0))
}

/// An error as a person reads it, without Rust's `(os error N)`.
fn why(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The progress of a running job file's job; `None` for a job of ansible's own wrapper (no
/// supervisor recorded), a job whose supervisor is gone, or a host without `/proc`.
pub fn of(running: &Running) -> Option<Value> {
    let supervisor = running.supervisor.as_ref()?;
    // A file that does not say (another release's, the fallback's) is taken as no_log.
    let no_log = running.no_log.unwrap_or(true);
    let mut reader = Reader::new();
    let sup = Stat::read(supervisor.pid, &mut reader)?;
    if sup.start_time != supervisor.start_time {
        return None;
    }
    let window = PidWindow::read(supervisor.pid, &mut reader);
    let all = processes(&mut reader, window, &sup);
    let group = running.module_process.as_ref().map(|m| m.pid);
    let job = job_processes(&all, supervisor.pid, group);
    let system = System::read(&mut reader);

    let mut processes = Vec::new();
    let (mut cpu, mut rss) = (0u64, 0u64);
    let mut io_total: Option<Io> = None;
    let mut writers = Vec::new();
    for (n, &stat) in job.iter().enumerate() {
        cpu += stat.ticks;
        rss += stat.rss_pages;
        if has_run(stat) || n < MAX_PROCESSES {
            let io = reader.read(stat.pid, "io").and_then(parse_io);
            if let Some(io) = io {
                let total = io_total.get_or_insert_with(Io::default);
                total.read_bytes += io.read_bytes;
                total.write_bytes += io.write_bytes;
            }
            if may_be_writing(io) && writers.len() < MAX_FD_PROCESSES {
                writers.push(stat.pid);
            }
        }
        if n < MAX_PROCESSES {
            let mut process = json!({
                "pid": stat.pid,
                "ppid": stat.ppid,
                "name": stat.name(),
                "state": state_word(stat.state),
                "cpu": system.seconds(stat.ticks),
                "rss": stat.rss_pages * system.page_size,
                "age": system.age(stat.start_time),
            });
            if !no_log {
                let args = reader.read_bytes(stat.pid, "cmdline").map(command_line).unwrap_or_default();
                process["args"] = json!(cut(&args, MAX_ARGS));
            }
            processes.push(process);
        }
    }
    let mut totals = json!({"count": job.len(), "cpu": system.seconds(cpu), "rss": rss * system.page_size});
    if let Some(io) = io_total {
        totals["read_bytes"] = json!(io.read_bytes);
        totals["write_bytes"] = json!(io.write_bytes);
    }
    let mut progress = Map::new();
    progress.insert("processes".into(), Value::Array(processes));
    progress.insert("totals".into(), totals);
    progress.insert("writing".into(), Value::Array(writing(&writers, supervisor.pid, &mut reader)));
    if no_log {
        progress.insert("no_log".into(), json!(true));
    } else if let Some(path) = &running.tail {
        progress.insert("tail".into(), tail(path));
    }
    Some(bounded(Value::Object(progress)))
}

/// Whether a process has used CPU time: a clock tick (10 ms) or more, its own or that of the
/// children it waited for (whose I/O counters were added to its own then). The I/O counters
/// and open files of the others, beyond the listed, are not read: in a job of many processes
/// most are idle (a `sleep`, a shell waiting), and a process moves data only as fast as its
/// CPU time lets it (docs/PROGRESS.md says what this leaves out).
pub fn has_run(stat: &Stat) -> bool {
    stat.ticks + stat.reaped_ticks > 0
}

/// Whether a process with these I/O counters may hold a file it is writing: one that has
/// written nothing yet (`wchar`, which takes in what the children it reaped wrote) is not
/// looked at, which spares reading the descriptors of a job's idle processes; one whose
/// counters cannot be read is.
pub fn may_be_writing(io: Option<Io>) -> bool {
    io.is_none_or(|io| io.wchar > 0)
}

/// Adds `progress` to a running job's status `report` (a running job file's object, as
/// `async_status` prints it), when the job is one of our supervisor's; a finished job's
/// result and a stock wrapper's job are left as they are.
pub fn attach(report: &mut Value) {
    let Some(job) = report.as_object() else { return };
    let Some(running) = Running::of(job) else { return };
    if let Some(progress) = of(&running) {
        report["progress"] = progress;
    }
}

/// The pids a process of the job can have, as pids are handed out in increasing order:
/// from the supervisor's to the last handed out (`ns_last_pid`); when the counter has wrapped
/// since (the last is below the supervisor's), from the supervisor's up and from the lowest to
/// the last. Every pid when the last cannot be read.
///
/// A counter that went all the way round and past the supervisor's pid again while the job
/// ran (millions of processes) hides some of the job's processes: a bound on the cost (most
/// of a host's processes are older than a job), documented in docs/PROGRESS.md.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidWindow {
    pub supervisor: u32,
    pub last: Option<u32>,
}

impl PidWindow {
    fn read(supervisor: u32, reader: &mut Reader) -> PidWindow {
        let last = reader.read_text("/proc/sys/kernel/ns_last_pid").and_then(|t| t.trim().parse().ok());
        PidWindow { supervisor, last }
    }

    pub fn holds(&self, pid: u32) -> bool {
        match self.last {
            Some(last) if last >= self.supervisor => (self.supervisor..=last).contains(&pid),
            Some(last) => pid >= self.supervisor || pid <= last,
            None => true,
        }
    }
}

/// Beyond this many processes started since the supervisor, the job is found by walking down
/// from the supervisor (where the kernel can) rather than by reading each one's `stat`.
pub const SCAN_MAX: usize = 200;

/// The job's processes (and, from a scan, other processes of the window: [`job_processes`]
/// picks the job's among them). A scan reads the `stat` of every process of the window; a
/// walk reads the `stat` and `children` of each of the job's processes, which costs more per
/// process but spares the others: it is taken when the window holds many processes.
fn processes(reader: &mut Reader, window: PidWindow, supervisor: &Stat) -> Vec<Stat> {
    // Without a wrap of the pid counter, the window is the pids from the supervisor's up.
    let from_supervisor = match window.last {
        Some(last) if last >= window.supervisor => reader.pids_from(window.supervisor),
        _ => None,
    };
    let mut pids = from_supervisor.unwrap_or_else(|| reader.numbers(format_args!("/proc"), usize::MAX));
    pids.retain(|&pid| window.holds(pid));
    if pids.len() > SCAN_MAX {
        if let Some(job) = walk(reader, supervisor) {
            return job;
        }
    }
    let mut all = Vec::with_capacity(pids.len());
    all.extend(pids.into_iter().filter_map(|pid| Stat::read(pid, reader)));
    all
}

/// Every descendant of `top`, through `/proc/PID/task/TID/children` (each thread lists the
/// children it started); `None` where the kernel has no such files (CONFIG_PROC_CHILDREN).
/// A pid listed is taken only if its `stat` names the parent: it may have ended, and its pid
/// been handed out again, since.
pub fn walk(reader: &mut Reader, top: &Stat) -> Option<Vec<Stat>> {
    let mut found = Vec::new();
    let mut pending = vec![(top.pid, children(reader, top)?)];
    while let Some((parent, pids)) = pending.pop() {
        for pid in pids {
            let Some(stat) = Stat::read(pid, reader).filter(|stat| stat.ppid == parent) else { continue };
            pending.push((pid, children(reader, &stat).unwrap_or_default()));
            found.push(stat);
        }
    }
    Some(found)
}

/// The children of a process, from the `children` file of each of its threads (one file for
/// a process of one thread); `None` when none could be read.
fn children(reader: &mut Reader, stat: &Stat) -> Option<Vec<u32>> {
    let pid = stat.pid;
    let threads = if stat.threads > 1 {
        reader.numbers(format_args!("/proc/{pid}/task"), usize::MAX)
    } else {
        vec![pid]
    };
    let mut found: Option<Vec<u32>> = None;
    for tid in threads {
        if let Some(text) = reader.read(pid, &format!("task/{tid}/children")) {
            found
                .get_or_insert_with(Vec::new)
                .extend(text.split_ascii_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    found
}

/// A process's storage I/O counters (`/proc/PID/io`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Io {
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Bytes passed to `write` and its kin, to any file, pipe or terminal.
    pub wchar: u64,
}

pub fn parse_io(text: &str) -> Option<Io> {
    let value = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some(Io { read_bytes: value("read_bytes")?, write_bytes: value("write_bytes")?, wchar: value("wchar")? })
}

/// The regular files `pids` hold open for writing, newest modification first, not those
/// the supervisor holds itself (the module's captured output) and not devices.
fn writing(pids: &[u32], supervisor: u32, reader: &mut Reader) -> Vec<Value> {
    // The supervisor's own files, read when the first regular file is met.
    let mut own: Option<Vec<(u64, u64)>> = None;
    // Each path is looked at once (the job's processes share most of their descriptors).
    let mut paths_seen: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for &pid in pids {
        for fd in reader.numbers(format_args!("/proc/{pid}/fd"), MAX_FDS) {
            let Some(path) = reader.link(pid, fd) else { continue };
            if !path.starts_with('/')
                || path.starts_with("/dev/")
                || paths_seen.iter().any(|seen| seen == path)
            {
                continue;
            }
            let path = path.to_string();
            let Some(status) = reader.target(pid, fd) else { continue };
            let regular = is_regular(&status);
            if regular && own.is_none() {
                own = Some(
                    reader
                        .numbers(format_args!("/proc/{supervisor}/fd"), MAX_FDS)
                        .into_iter()
                        .filter_map(|fd| reader.target(supervisor, fd))
                        .filter(is_regular)
                        .map(|status| (status.st_dev, status.st_ino))
                        .collect(),
                );
            }
            if !regular || own.as_ref().is_some_and(|own| own.contains(&(status.st_dev, status.st_ino))) {
                paths_seen.push(path);
                continue;
            }
            // Another process may hold the same file open for writing: a path opened only
            // for reading is not taken as seen.
            if !reader.read(pid, &format!("fdinfo/{fd}")).is_some_and(fdinfo_writes) {
                continue;
            }
            let mtime = modified(&status);
            files.push((
                mtime.unwrap_or(0.0),
                json!({"path": cut_start(&path, MAX_PATH), "size": status.st_size, "mtime": mtime}),
            ));
            paths_seen.push(path);
        }
    }
    sort_descending(&mut files, |file| file.0);
    files.into_iter().take(MAX_WRITING).map(|(_, file)| file).collect()
}

fn is_regular(status: &libc::stat) -> bool {
    status.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// A file's modification time in seconds since the epoch, to a millisecond; `None` before it.
fn modified(status: &libc::stat) -> Option<f64> {
    let seconds = status.st_mtime as f64 + status.st_mtime_nsec as f64 / 1e9;
    (status.st_mtime >= 0).then(|| (seconds * 1000.0).round() / 1000.0)
}

pub fn fdinfo_writes(info: &str) -> bool {
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & 3 != 0)
}

/// What turns ticks and pages into seconds and bytes.
struct System {
    ticks_per_sec: f64,
    page_size: u64,
    /// Seconds since boot.
    uptime: f64,
}

impl System {
    fn read(reader: &mut Reader) -> System {
        // SAFETY: sysconf takes a plain integer and reads no memory of ours.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        // The clock of `/proc/uptime` and of the start times in `stat` (in a time namespace
        // too), read without a system call.
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `clock_gettime` fills `now`, which is ours.
        let uptime = if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } == 0 {
            now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
        } else {
            reader
                .read_text("/proc/uptime")
                .and_then(|t| crate::decimal::parse_f64(t.split_whitespace().next()?))
                .unwrap_or(0.0)
        };
        System {
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
            uptime,
        }
    }

    /// Ticks as seconds, to a hundredth.
    fn seconds(&self, ticks: u64) -> f64 {
        (ticks as f64 / self.ticks_per_sec * 100.0).round() / 100.0
    }

    /// Seconds since a process started `start_time` ticks after boot, to a tenth.
    fn age(&self, start_time: u64) -> f64 {
        ((self.uptime - start_time as f64 / self.ticks_per_sec).max(0.0) * 10.0).round() / 10.0
    }
}

/// `progress` made to fit [`MAX_BYTES`]: the oldest tail lines go first, then the oldest
/// listed processes, then the oldest written files, then the arguments.
pub fn bounded(mut progress: Value) -> Value {
    let size = |v: &Value| {
        // Counted as written, not kept: no text is built (through `Display`, whose code the
        // program has anyway).
        let mut counted = Counted(0);
        write!(counted, "{v}").map_or(usize::MAX, |()| counted.0)
    };
    while size(&progress) > MAX_BYTES {
        if let Some(lines) = progress.pointer_mut("/tail/lines").and_then(Value::as_array_mut) {
            if lines.len() > 1 {
                lines.remove(0);
                continue;
            }
        }
        if let Some(processes) = progress.get_mut("processes").and_then(Value::as_array_mut) {
            if processes.len() > 1 {
                processes.pop();
                continue;
            }
        }
        if let Some(files) = progress.get_mut("writing").and_then(Value::as_array_mut) {
            if files.len() > 1 {
                files.pop();
                continue;
            }
        }
        let Some(map) = progress.as_object_mut() else { break };
        // Whatever is left that can be long.
        if map.remove("tail").is_none() && map.remove("writing").is_none() {
            map.insert("processes".into(), json!([]));
            break;
        }
    }
    progress
}

/// A writer that counts the bytes written to it.
struct Counted(usize);

impl fmt::Write for Counted {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0 += text.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessStamp;
    use std::fs::File;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn stat(pid: u32, ppid: u32, pgrp: u32, start_time: u64) -> Stat {
        let text =
            format!("{pid} (p{pid}) S {ppid} {pgrp} 0 0 -1 0 0 0 0 0 1 0 0 0 20 0 1 0 {start_time} 0 1");
        Stat::parse(&text).unwrap()
    }

    #[test]
    fn stat_lines_parse_whatever_the_name_holds() {
        let text =
            "4243 (sh (x) y) S 4242 4243 4243 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 987655 2412544 201 \
                    18446744073709551615 1 1 0 0 0 0 0 0 65536 0 0 0 17 1 0 0 0 0 0\n";
        let stat = Stat::parse(text).unwrap();
        assert_eq!(
            (stat.pid, stat.name(), stat.state, stat.ppid, stat.pgrp),
            (4243, "sh (x) y", 'S', 4242, 4243)
        );
        assert_eq!((stat.ticks, stat.reaped_ticks, stat.start_time, stat.rss_pages), (10, 0, 987655, 201));
        assert!(has_run(&stat));
        let idle = Stat::parse("9 (sleep) S 8 8 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 1").unwrap();
        assert!(!has_run(&idle), "no tick of its own nor of reaped children");
        let waited = Stat::parse("9 (sh) S 8 8 0 0 -1 0 0 0 0 0 0 0 2 1 20 0 1 0 5 0 1").unwrap();
        assert_eq!((waited.ticks, waited.reaped_ticks), (0, 3));
        assert!(has_run(&waited), "its children's I/O is in its counters");
        let long = format!("7 ({}) S 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 1", "é".repeat(40));
        assert_eq!(Stat::parse(&long).unwrap().name(), "é".repeat(16), "cut at a character's boundary");
        assert_eq!(Stat::parse("12 (x) S 1"), None);
        let odd = Stat::parse_bytes(b"8 (a\xffb) S 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 1").unwrap();
        assert_eq!((odd.pid, odd.name()), (8, "a\u{fffd}b"), "a name that is not UTF-8 is kept, lossily");
        assert_eq!(Stat::parse("9 (x) S -1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 1"), None, "no sign");
        assert_eq!(
            Stat::parse("9 (x) S 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 99999999999999999999"),
            None
        );
        assert_eq!(Stat::parse(""), None);
        let me = Stat::read(std::process::id(), &mut Reader::new()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.rss_pages > 0);
    }

    #[test]
    fn the_job_is_the_supervisors_descendants_and_the_modules_group_newest_first() {
        let all = [
            stat(1, 0, 1, 1),
            stat(10, 1, 10, 5),  // the supervisor
            stat(11, 10, 11, 6), // the module
            stat(12, 11, 11, 7), // its child
            stat(13, 12, 13, 9), // a grandchild in a group of its own
            stat(14, 10, 14, 8), // an orphan reparented to the supervisor
            stat(15, 1, 11, 10), // of the module's group, escaped elsewhere
            stat(20, 1, 20, 11), // another process
        ];
        let pids = |job: Vec<&Stat>| job.iter().map(|s| s.pid).collect::<Vec<_>>();
        assert_eq!(pids(job_processes(&all, 10, Some(11))), [15, 13, 14, 12, 11]);
        assert_eq!(pids(job_processes(&all, 10, None)), [13, 14, 12, 11]);
        assert_eq!(pids(job_processes(&all, 99, None)), Vec::<u32>::new());
        // In any order found (a walk's), the same order out.
        let mut shuffled = all.clone();
        shuffled.swap(1, 5);
        shuffled.swap(2, 6);
        shuffled.reverse();
        assert_eq!(pids(job_processes(&shuffled, 10, Some(11))), [15, 13, 14, 12, 11]);
    }

    #[test]
    fn the_pid_window_is_what_was_handed_out_since_the_supervisor() {
        let window = PidWindow { supervisor: 500, last: Some(800) };
        assert!(window.holds(500) && window.holds(650) && window.holds(800));
        assert!(!window.holds(499) && !window.holds(801) && !window.holds(7000), "older than the supervisor");
        let wrapped = PidWindow { supervisor: 30000, last: Some(300) };
        assert!(wrapped.holds(30000) && wrapped.holds(32767) && wrapped.holds(2) && wrapped.holds(300));
        assert!(!wrapped.holds(301) && !wrapped.holds(29999));
        let unknown = PidWindow { supervisor: 500, last: None };
        assert!(unknown.holds(1) && unknown.holds(40000));
    }

    /// The walk down `children` files finds what the scan finds: a grandchild in a process
    /// group of its own, and children started by another thread than the main one (the test
    /// runs on a thread of the test harness).
    #[test]
    fn a_walk_finds_the_descendants_a_scan_finds() {
        let mut reader = Reader::new();
        let me = Stat::read(std::process::id(), &mut reader).unwrap();
        if walk(&mut reader, &me).is_none() {
            eprintln!("no /proc/PID/task/TID/children here (CONFIG_PROC_CHILDREN): nothing to compare");
            return;
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("setsid sleep 30 & sleep 30 & wait")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (walked, scanned) = loop {
            let pids = |job: Vec<&Stat>| {
                let mut pids: Vec<u32> = job.iter().map(|s| s.pid).collect();
                pids.sort_unstable();
                pids
            };
            let walked = pids(job_processes(&walk(&mut reader, &me).unwrap(), me.pid, None));
            let window = PidWindow { supervisor: 0, last: None };
            let scanned = pids(job_processes(&processes(&mut reader, window, &me), me.pid, None));
            if walked.len() >= 3 && walked == scanned {
                break (walked, scanned);
            }
            assert!(std::time::Instant::now() < deadline, "{walked:?} {scanned:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let _ = Command::new("pkill").arg("-P").arg(child.id().to_string()).status();
        let _ = child.kill();
        let _ = child.wait();
        assert!(walked.contains(&child.id()), "{walked:?}");
        assert_eq!(walked, scanned);
    }

    #[test]
    fn sorting_is_largest_first_and_stable() {
        let mut items = [(1, 'a'), (3, 'b'), (2, 'c'), (3, 'd'), (0, 'e')];
        sort_descending(&mut items, |item| item.0);
        assert_eq!(items, [(3, 'b'), (3, 'd'), (2, 'c'), (1, 'a'), (0, 'e')]);
        let mut empty: [u8; 0] = [];
        sort_descending(&mut empty, |x| *x);
    }

    #[test]
    fn states_are_words() {
        let words: Vec<_> = "RSDTtZIX".chars().map(state_word).collect();
        assert_eq!(
            words,
            ["running", "sleeping", "disk wait", "stopped", "stopped", "zombie", "sleeping", "zombie"]
        );
    }

    #[test]
    fn texts_are_cut_to_their_bounds() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdé", 4), "abcd…");
        assert_eq!(cut(&"x".repeat(1000), MAX_ARGS).chars().count(), MAX_ARGS + 1);
        assert_eq!(cut_start("/var/log/x.log", 5), "…x.log");
        assert_eq!(cut_start("/a", 5), "/a");
        assert_eq!(command_line(b"sh\0-c\0sleep 1\0"), "sh -c sleep 1");
        assert_eq!(command_line(b""), "");
    }

    #[test]
    fn io_and_fdinfo_parse() {
        let io = "rchar: 5\nwchar: 6\nsyscr: 1\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), Some(Io { read_bytes: 4096, write_bytes: 8192, wchar: 6 }));
        assert_eq!(parse_io("rchar: 5\n"), None);
        assert!(fdinfo_writes("pos:\t0\nflags:\t0102001\nmnt_id:\t1\n"), "O_WRONLY|O_APPEND");
        assert!(fdinfo_writes("flags:\t02\n"), "O_RDWR");
        assert!(!fdinfo_writes("pos:\t0\nflags:\t0100000\n"), "O_RDONLY");
        assert!(!fdinfo_writes(""));
    }

    #[test]
    fn folder_records_give_their_names() {
        let record = |name: &str| {
            let length = (19 + name.len() + 1).next_multiple_of(8);
            let mut bytes = vec![0u8; length];
            bytes[16..18].copy_from_slice(&(length as u16).to_ne_bytes());
            bytes[19..19 + name.len()].copy_from_slice(name.as_bytes());
            bytes
        };
        let entries = [record("."), record("1234"), record("self"), record("a-much-longer-name")].concat();
        let names: Vec<_> = dirent_names(&entries).collect();
        assert_eq!(names, [&b"."[..], b"1234", b"self", b"a-much-longer-name"]);
        assert_eq!(dirent_names(&entries[..10]).count(), 0, "a cut record is not read");
        assert_eq!(dirent_names(&[0u8; 24]).count(), 0, "a record of length 0 ends the list");
    }

    #[test]
    fn the_reader_lists_and_follows_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("written");
        let file = fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let fd = u32::try_from(file.as_raw_fd()).unwrap();
        let me = std::process::id();
        let mut reader = Reader::new();
        let fds = reader.numbers(format_args!("/proc/{me}/fd"), MAX_FDS);
        assert!(fds.contains(&fd) && fds.contains(&0), "{fds:?}");
        assert_eq!(reader.numbers(format_args!("/proc/{me}/fd"), 1).len(), 1);
        assert!(reader.numbers(format_args!("/proc"), usize::MAX).contains(&me));
        assert_eq!(reader.numbers(format_args!("/proc/no-such-folder"), 10), Vec::<u32>::new());
        assert_eq!(reader.link(me, fd), path.to_str());
        let status = reader.target(me, fd).unwrap();
        assert!(is_regular(&status) && status.st_size == 0);
        assert!(modified(&status).unwrap() > 1e9);
        assert!(reader.read(me, &format!("fdinfo/{fd}")).is_some_and(fdinfo_writes));
        assert_eq!(reader.link(me, 99_999), None);
        assert!(reader.target(me, 99_999).is_none());
        assert!(reader.read_bytes(me, "cmdline").is_some_and(|args| !args.is_empty()));
    }

    /// The listing from a pid up starts at that pid and holds what the whole listing holds
    /// from there: a process started after it (a child of this test) is in it.
    #[test]
    fn the_pids_from_a_live_process_up_are_those_of_the_whole_listing() {
        let me = std::process::id();
        let mut reader = Reader::new();
        let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
        let from_me = reader.pids_from(me).expect("the listing starts at this process");
        let all = reader.numbers(format_args!("/proc"), usize::MAX);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(from_me.first(), Some(&me));
        assert!(from_me.windows(2).all(|w| w[0] < w[1]), "increasing: {from_me:?}");
        // The child ran all along (other tests' processes come and go in between).
        assert!(all.contains(&child.id()));
        if child.id() > me {
            assert!(from_me.contains(&child.id()), "{from_me:?}");
        }
        // A pid with no process: no listing (the caller lists all of /proc).
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        assert_eq!(reader.pids_from(gone_pid), None);
    }

    /// Files read are closed in batches: none is left open by a reader that read more than a
    /// batch, and its descriptors are closed when it is dropped, runs in a row or not.
    #[test]
    fn the_reader_closes_every_file_it_read() {
        let me = std::process::id();
        // This test thread's own `stat`, which no other test reads: a descriptor another test
        // opens meanwhile (they run in threads of this process) never points to it.
        // SAFETY: gettid takes nothing and cannot fail.
        let file = format!("task/{}/stat", unsafe { libc::gettid() });
        let stat_path = format!("/proc/{me}/{file}");
        let points_to_stat = |fd: libc::c_int| {
            fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|p| p.to_str() == Some(&stat_path))
        };
        let mut reader = Reader::new();
        for _ in 0..UNCLOSED * 2 + 3 {
            assert!(reader.read_bytes(me, &file).is_some());
        }
        assert!(reader.unclosed.len() < UNCLOSED, "{}", reader.unclosed.len());
        let kept = reader.unclosed.clone();
        assert!(!kept.is_empty() && kept.iter().all(|&fd| points_to_stat(fd)));
        drop(reader);
        assert!(!kept.iter().any(|&fd| points_to_stat(fd)), "closed with the reader: {kept:?}");

        // Descriptors with a gap between them (one closed by someone else).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        fs::write(&path, "x").unwrap();
        let open = || File::open(&path).unwrap();
        let (a, b, c) = (open(), open(), open());
        let fds = [a.as_raw_fd(), c.as_raw_fd()];
        drop(b);
        let mut reader = Reader::new();
        reader.unclosed.extend([a.into_raw_fd(), c.into_raw_fd()]);
        reader.close_all();
        let points_to_held =
            |fd: libc::c_int| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|p| p == path);
        assert!(!fds.iter().any(|&fd| points_to_held(fd)), "{fds:?}");
        assert!(reader.unclosed.is_empty());
    }

    #[test]
    fn ages_are_counted_on_the_clock_of_proc_uptime() {
        let uptime = |text: String| text.split_whitespace().next().unwrap().parse::<f64>().unwrap();
        let before = uptime(fs::read_to_string("/proc/uptime").unwrap());
        let system = System::read(&mut Reader::new());
        let after = uptime(fs::read_to_string("/proc/uptime").unwrap());
        assert!(
            before - 0.01 <= system.uptime && system.uptime <= after + 0.01,
            "{before} {} {after}",
            system.uptime
        );
    }

    #[test]
    fn only_a_process_that_wrote_may_be_writing() {
        let io = |wchar| Some(Io { wchar, ..Io::default() });
        assert!(may_be_writing(io(1)));
        assert!(!may_be_writing(io(0)), "an idle process: its descriptors are not read");
        assert!(may_be_writing(None), "counters it may not read: looked at");
    }

    #[test]
    fn the_tail_is_the_last_whole_lines_of_the_last_kilobyte() {
        assert_eq!(last_lines(b"a\nb\n", true), ["a", "b"]);
        assert_eq!(last_lines(b"partial\nb\r\nc", false), ["b", "c"]);
        assert_eq!(last_lines(b"only a part", false), ["only a part"]);
        assert_eq!(last_lines(b"1\n2\n3\n4\n5\n6\n7\n", true), ["3", "4", "5", "6", "7"]);
        assert_eq!(last_lines(b"", true), Vec::<String>::new());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut file = File::create(&path).unwrap();
        for n in 0..1000 {
            writeln!(file, "line {n}").unwrap();
        }
        let tail = tail(path.to_str().unwrap());
        assert_eq!(tail["lines"], json!(["line 995", "line 996", "line 997", "line 998", "line 999"]));
        let long = dir.path().join("long.log");
        fs::write(&long, format!("{}\n", "y".repeat(5000))).unwrap();
        let tail_of_long = super::tail(long.to_str().unwrap());
        let lines = tail_of_long["lines"].as_array().unwrap();
        assert!(
            lines.len() == 1 && lines[0].as_str().unwrap().len() as u64 == TAIL_BYTES - 1,
            "{tail_of_long}"
        );

        let missing = dir.path().join("missing.log");
        let tail = super::tail(missing.to_str().unwrap());
        assert_eq!(tail, json!({"path": missing.to_str().unwrap(), "error": "No such file or directory"}));
        // A FIFO is not read (it would block), nor a directory.
        let fifo = dir.path().join("fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert_eq!(super::tail(fifo.to_str().unwrap())["error"], "not a regular file");
        assert_eq!(super::tail(dir.path().to_str().unwrap())["error"], "not a regular file");
    }

    #[test]
    fn progress_never_exceeds_its_bound() {
        let process = |n: usize| json!({"pid": n, "name": "x", "args": "\u{1}".repeat(MAX_ARGS)});
        let big = json!({
            "processes": (0..MAX_PROCESSES).map(process).collect::<Vec<_>>(),
            "totals": {"count": 100},
            "writing": (0..MAX_WRITING).map(|_| json!({"path": "\u{2}".repeat(MAX_PATH)})).collect::<Vec<_>>(),
            "tail": {"path": "/x", "lines": (0..TAIL_LINES).map(|_| "\u{3}".repeat(200)).collect::<Vec<_>>()},
        });
        assert!(big.to_string().len() > MAX_BYTES);
        let mut counted = Counted(0);
        write!(counted, "{big}").unwrap();
        assert_eq!(counted.0, big.to_string().len(), "the size counted is the text's");
        let small = bounded(big);
        assert!(small.to_string().len() <= MAX_BYTES, "{}", small.to_string().len());
        assert_eq!(small["totals"]["count"], 100, "the totals stay");
        assert!(!small["processes"].as_array().unwrap().is_empty(), "the newest process stays");
        let fits = json!({"processes": [process(1)], "totals": {}});
        assert_eq!(bounded(fits.clone()), fits);
    }

    #[test]
    fn only_a_running_file_of_a_live_supervisor_gets_progress() {
        let me = json!(ProcessStamp::current().unwrap());
        let mut ours = json!({"started": true, "finished": false, "supervisor": me, "no_log": false});
        attach(&mut ours);
        assert!(ours["progress"]["totals"]["count"].is_u64(), "{ours}");
        for unchanged in [
            json!({"started": 1, "finished": 0, "ansible_job_id": "j1.1"}),
            json!({"rc": 0, "stdout": "x", "supervisor": me}),
            json!({"started": true, "supervisor": {"pid": 0, "start_time": 1, "boot_id": "x"}}),
            json!("not an object"),
        ] {
            let mut report = unchanged.clone();
            attach(&mut report);
            assert_eq!(report, unchanged);
        }
    }

    /// A real job: a supervisor-like parent (this test) is not a subreaper, so its
    /// descendants are found by their parents; a file held open for writing is listed, one
    /// held by the supervisor is not.
    #[test]
    fn a_real_process_tree_and_the_file_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3>>'{}'; echo hello >&3; sh -c 'sleep 30' & wait", log.display()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = ProcessStamp::current().unwrap();
        let running = Running {
            started: true,
            supervisor: Some(me.clone()),
            no_log: Some(false),
            tail: Some(log.to_str().unwrap().into()),
            ..Running::default()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let progress = loop {
            let progress = of(&running).unwrap();
            let names: Vec<_> =
                progress["processes"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
            let writes =
                progress["writing"].as_array().unwrap().iter().any(|f| f["path"] == log.to_str().unwrap());
            if names.contains(&json!("sleep")) && writes {
                break progress;
            }
            assert!(std::time::Instant::now() < deadline, "{progress}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        let sleep = progress["processes"].as_array().unwrap().iter().find(|p| p["name"] == "sleep").unwrap();
        assert_eq!(sleep["args"], "sleep 30");
        assert!(sleep["rss"].as_u64().unwrap() > 0 && sleep["age"].as_f64().unwrap() >= 0.0, "{sleep}");
        let writing = progress["writing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == log.to_str().unwrap())
            .unwrap();
        assert_eq!((&writing["path"], &writing["size"]), (&json!(log.to_str().unwrap()), &json!(6)));
        assert_eq!(progress["tail"], json!({"path": log.to_str().unwrap(), "lines": ["hello"]}));
        assert!(progress["totals"]["count"].as_u64().unwrap() >= 3, "{progress}");

        // no_log: names and figures only.
        let quiet = Running { no_log: Some(true), ..running };
        let progress = of(&quiet).unwrap();
        assert_eq!(progress["no_log"], true);
        assert!(progress.get("tail").is_none());
        assert!(
            progress["processes"].as_array().unwrap().iter().all(|p| p.get("args").is_none()),
            "{progress}"
        );

        // A stock wrapper's job, or a supervisor that is gone: none.
        assert_eq!(of(&Running { started: true, ..Running::default() }), None);
        let gone = ProcessStamp { start_time: me.start_time + 1, ..me };
        assert_eq!(of(&Running { supervisor: Some(gone), ..Running::default() }), None);
    }
}
