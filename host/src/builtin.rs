//! The components built into the binary (compiled by build.rs from plugins/).

/// `fetcher/fetch`: fetch a repository or folder into `/fetch/<resource>`.
pub const FETCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/copper_fetcher.wasm"));

/// `markdown/build`: build an HTML site from markdown.
pub const MARKDOWN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/copper_markdown.wasm"));

/// A component built into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its service's name.
    pub name: &'static str,
    /// The component.
    pub bytes: &'static [u8],
    /// The sha256 of `bytes`, in hex, taken when the binary was built.
    pub sha256: &'static str,
}

/// Every built-in component.
pub const ALL: [Builtin; 2] = [
    Builtin {
        name: "fetcher",
        bytes: FETCHER,
        sha256: env!("COPPER_FETCHER_SHA256"),
    },
    Builtin {
        name: "markdown",
        bytes: MARKDOWN,
        sha256: env!("COPPER_MARKDOWN_SHA256"),
    },
];

/// Path of the `testkit` component (echo, trap, loop, …) used by the tests and benchmarks.
#[doc(hidden)]
pub const TESTKIT_PATH: &str = env!("COPPER_TESTKIT_WASM");

/// Path of a component that imports `git` without declaring it (the host must refuse it).
#[doc(hidden)]
pub const UNDECLARED_PATH: &str = env!("COPPER_UNDECLARED_WASM");
