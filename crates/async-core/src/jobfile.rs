use serde_json::{Map, Value};

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
        match crate::json::parse_slice(text) {
            Ok(Value::Object(map)) => JobFile::Object(map),
            _ => JobFile::Garbage(String::from_utf8_lossy(text).into_owned()),
        }
    }
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
}
