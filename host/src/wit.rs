//! Rust bindings of the `copper:service` WIT package (`wit/` at the repository root).

#![expect(
    missing_docs,
    reason = "generated from wit/, whose doc comments document it"
)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "git-plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use copper::service::types::{ActionInfo, ErrorKind, Request, ServiceError, ServiceInfo};
pub use exports::copper::service::service::Guest;
