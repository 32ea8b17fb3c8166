//! async_wrapper's integration tests, in one test binary: the wrapper as ansible runs it
//! (`cli`), faults and hostile conditions (`faults`), ending jobs (`termination`), the lease
//! (`lease`), all in the sandboxed host of `host`.

mod cli;
mod faults;
mod host;
mod lease;
mod termination;
