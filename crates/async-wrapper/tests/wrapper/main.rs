//! async_wrapper's integration tests, in one test binary: the wrapper as ansible runs it
//! (`cli`), the table of command lines every wrapper is held to (`arguments`), faults and
//! hostile conditions (`faults`), ending jobs (`termination`), the lease (`lease`), results
//! that hold secrets and retention (`secrets`), all in
//! the sandboxed host of `host`.

mod arguments;
mod cli;
mod faults;
mod host;
mod lease;
mod secrets;
mod termination;
