//! The components built into the binary (compiled by build.rs from plugins/).

/// `fetcher/fetch`: fetch a repository or folder into `/fetch/<resource>`.
pub const FETCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/copper_fetcher.wasm"));

/// `markdown/build`: build an HTML site from markdown.
pub const MARKDOWN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/copper_markdown.wasm"));

/// Every built-in component, by name.
pub const ALL: [(&str, &[u8]); 2] = [("fetcher", FETCHER), ("markdown", MARKDOWN)];

/// Path of the `testkit` component (echo, trap, loop, …) used by the tests and benchmarks.
#[doc(hidden)]
pub const TESTKIT_PATH: &str = env!("COPPER_TESTKIT_WASM");

/// Path of a component that imports `git` without declaring it (the host must refuse it).
#[doc(hidden)]
pub const UNDECLARED_PATH: &str = env!("COPPER_UNDECLARED_WASM");
