use serde_json::{Map, Value};

use crate::ProcessStamp;

/// A job file as read back from the job directory.
#[derive(Clone, Debug)]
pub enum JobFile {
    /// No such file: ansible never started this job, or it was cleaned up.
    Missing,
    /// An empty file: a stock wrapper is between creating and writing it, so the job runs.
    Empty,
    /// One JSON object: a running job's marker or a finished job's result.
    Object(Map<String, Value>),
    /// Anything else: the file was damaged; the text is kept for the report.
    Garbage(String),
}

impl JobFile {
    pub fn parse(text: &[u8]) -> JobFile {
        if text.iter().all(u8::is_ascii_whitespace) {
            return JobFile::Empty;
        }
        match serde_json::from_slice(text) {
            Ok(Value::Object(map)) => JobFile::Object(map),
            _ => JobFile::Garbage(String::from_utf8_lossy(text).into_owned()),
        }
    }
}

/// A job file that says the job runs: ansible's rule is the presence of `started`.
pub fn is_running(job: &Map<String, Value>) -> bool {
    job.contains_key("started")
}

/// The supervisor a running job's file records, when it was written by our wrapper
/// (a stock wrapper records none).
pub fn supervisor(job: &Map<String, Value>) -> Option<ProcessStamp> {
    ProcessStamp::from_json(job.get("supervisor")?)
}

/// Seconds since the job started, when its file says when that was.
pub fn elapsed(job: &Map<String, Value>) -> Option<f64> {
    let started_at = job.get("started_at")?.as_f64()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    Some(((now - started_at).max(0.0) * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_kinds_of_content_apart() {
        assert!(matches!(JobFile::parse(b""), JobFile::Empty));
        assert!(matches!(JobFile::parse(b" \n"), JobFile::Empty));
        assert!(matches!(JobFile::parse(b"{\"started\": true}"), JobFile::Object(_)));
        assert!(matches!(JobFile::parse(b"{\"started\": tr"), JobFile::Garbage(_)));
        assert!(matches!(JobFile::parse(b"[1, 2]"), JobFile::Garbage(_)));
        assert!(matches!(JobFile::parse(b"\xff\xfe"), JobFile::Garbage(_)));
    }

    #[test]
    fn reads_what_a_running_job_records() {
        let me = ProcessStamp::current().unwrap();
        let JobFile::Object(job) = JobFile::parse(
            serde_json::json!({"started": true, "finished": false, "started_at": 1.0, "supervisor": me.to_json()})
                .to_string()
                .as_bytes(),
        ) else {
            panic!()
        };
        assert!(is_running(&job));
        assert_eq!(supervisor(&job), Some(me));
        assert!(elapsed(&job).unwrap() > 1e9);
        let JobFile::Object(stock) = JobFile::parse(b"{\"started\": 1, \"finished\": 0}") else { panic!() };
        assert!(is_running(&stock));
        assert_eq!(supervisor(&stock), None);
        assert_eq!(elapsed(&stock), None);
    }
}
