//! `payload-pack`: compresses what `library/` carries packed, for `assemble.sh`.
//!
//! `payload-pack gzip FILE` writes FILE to stdout in gzip's format, `payload-pack deflate
//! FILE` as a raw deflate stream (what Python's `zlib.decompress(data, -15)` reads). Both use
//! zopfli, whose streams any inflater reads and which are some 5% smaller than `gzip -9`'s:
//! every async launch uploads the programs, so the bytes count. The output depends only on
//! the input (gzip's header carries no name and no time). Only the build machine runs it;
//! it is not shipped.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use zopfli::{compress, Format, Options};

const USAGE: &str = "usage: payload-pack gzip|deflate FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let format = match args.first().map(String::as_str) {
        Some("gzip") => Format::Gzip,
        Some("deflate") => Format::Deflate,
        _ => return usage(),
    };
    let [_, path] = args.as_slice() else { return usage() };
    let input = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("payload-pack: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut packed = Vec::with_capacity(input.len() / 2);
    if let Err(e) = compress(Options::default(), format, input.as_slice(), &mut packed) {
        eprintln!("payload-pack: {path}: {e}");
        return ExitCode::FAILURE;
    }
    match std::io::stdout().lock().write_all(&packed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payload-pack: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
