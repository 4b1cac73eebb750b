//! A plugin that imports capability `git` but does not declare it in `describe`:
//! the host must refuse to load it. Used by the tests only.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "git-plugin" });

    use copper::service::types::{ErrorKind, Request, ServiceError, ServiceInfo};

    struct Undeclared;

    impl exports::copper::service::service::Guest for Undeclared {
        fn describe() -> ServiceInfo {
            ServiceInfo {
                name: "undeclared".into(),
                version: "0.0.0".into(),
                actions: vec![],
                capabilities: vec![],
            }
        }

        fn handle(req: Request) -> Result<String, ServiceError> {
            // Uses the import, so that the component really imports `git`.
            copper::service::git::clone(&req.input, None, "/scratch/x")
                .map(|done| done.commit)
                .map_err(|message| ServiceError {
                    kind: ErrorKind::Failed,
                    message,
                })
        }
    }

    export!(Undeclared);
}
