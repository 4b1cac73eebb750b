//! The host as a library: the embedding example runs.

use crate::support::*;

#[test]
fn the_embedding_example_registers_a_component_and_runs_a_workflow() {
    // cargo builds the examples with the tests: target/<profile>/examples/embed.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let example = profile_dir.join("examples/embed");
    assert!(
        example.exists(),
        "{} is built with the tests",
        example.display()
    );
    let out = output(std::process::Command::new(&example).arg(copper_wasm::builtin::TESTKIT_PATH));
    out.assert_success();
    let stdout = &out.stdout;
    assert!(
        stdout.contains("hello: success") && stdout.contains("again: success"),
        "{stdout}"
    );
    assert!(
        stdout.contains("echoed: \"hello from an embedded host\""),
        "{stdout}"
    );
}

/// A host with the built-in components and the testkit, its cache in `dir`.
async fn library_host(dir: &std::path::Path) -> copper_wasm::Host {
    let config = copper_wasm::HostConfig {
        cache: dir.join("cache"),
        workspace: dir.to_path_buf(),
        components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
        ..copper_wasm::HostConfig::default()
    };
    copper_wasm::Host::start(config, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap()
}

/// A guard against a hang, not a timing: the answers here come in milliseconds.
async fn within<T>(what: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), what)
        .await
        .expect("answered within 60 s")
}

#[tokio::test]
async fn check_names_the_step_and_line_of_an_action_nobody_answers() {
    use copper_wasm::host::RunError;
    let dir = tempfile::tempdir().unwrap();
    let host = library_host(dir.path()).await;
    let workflow = copper_wasm::Workflow::parse(
        "- action: testkit/echo\n  n: 1\n- action: nobody/answers\n",
        std::path::Path::new("inline.yaml"),
    )
    .unwrap();
    let options = copper_wasm::runner::RunOptions::default();
    let checked = within(host.check(&workflow, &options)).await;
    let ran = within(host.run(&workflow, options, |_| {})).await;
    host.stop().await;
    for result in [checked.map(|_| ()), ran.map(|_| ())] {
        let Err(RunError::Invalid(error)) = result else {
            panic!("not an invalid workflow: {result:?}");
        };
        assert_eq!(error.file, std::path::Path::new("inline.yaml"));
        assert_eq!(error.line, Some(3), "{error}");
        assert_eq!(error.field.as_deref(), Some("action"));
        assert!(error.message.contains("`nobody/answers`"), "{error}");
        assert!(error.message.contains("testkit/echo"), "{error}");
    }
}

#[tokio::test]
async fn check_refuses_an_input_that_breaks_its_schema_before_anything_runs() {
    use copper_wasm::host::RunError;
    let dir = tempfile::tempdir().unwrap();
    let host = library_host(dir.path()).await;
    // markdown/build requires `path`.
    let workflow = copper_wasm::Workflow::parse(
        "- action: markdown/build\n  resource: docs\n",
        std::path::Path::new("inline.yaml"),
    )
    .unwrap();
    let mut events = 0;
    let result = within(host.run(
        &workflow,
        copper_wasm::runner::RunOptions::default(),
        |_| events += 1,
    ))
    .await;
    host.stop().await;
    let Err(RunError::Invalid(error)) = result else {
        panic!("not an invalid workflow: {result:?}");
    };
    assert_eq!(error.line, Some(1), "{error}");
    assert!(
        error.message.contains("schema of `markdown/build`"),
        "{error}"
    );
    assert!(error.message.contains("path"), "{error}");
    assert_eq!(events, 0, "nothing ran");
}

#[tokio::test]
async fn a_call_nobody_answers_is_an_error_naming_the_known_actions() {
    use copper_wasm::runner::RequestError;
    let dir = tempfile::tempdir().unwrap();
    let host = library_host(dir.path()).await;
    let fields = copper_wasm::protocol::Object::new();
    let result = within(host.call("nobody/answers", &fields, None)).await;
    let wildcard = within(host.call("testkit/#", &fields, None)).await;
    let echoed = within(host.call("testkit/echo", &fields, None)).await;
    host.stop().await;
    assert!(
        matches!(&wildcard, Err(RequestError::NotAnAction(t)) if t == "testkit/#"),
        "{wildcard:?}"
    );
    let Err(RequestError::NotServed { topic, known }) = result else {
        panic!("not refused: {result:?}");
    };
    assert_eq!(topic, "nobody/answers");
    assert!(known.iter().any(|t| t == "markdown/build"), "{known:?}");
    assert!(known.iter().any(|t| t == "testkit/echo"), "{known:?}");
    let echoed = echoed.unwrap();
    assert_eq!(echoed.entry["action"], "testkit/echo", "{:?}", echoed.entry);
}

#[tokio::test]
async fn the_hosts_step_cache_reuses_a_components_earlier_success() {
    use copper_wasm::runner::{RunOptions, StepStatus};
    let dir = tempfile::tempdir().unwrap();
    let host = library_host(dir.path()).await;
    // A step is reused when the files its input names are unchanged.
    let notes = dir.path().join("cache/fetch/notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("a.md"), "# A\n").unwrap();
    let workflow = copper_wasm::Workflow::parse(
        "- id: site\n  action: markdown/build\n  resource: notes\n  path: /fetch/notes\n",
        std::path::Path::new("inline.yaml"),
    )
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let options = RunOptions {
            cache: Some(host.step_cache()),
            ..RunOptions::default()
        };
        let report = within(host.run(&workflow, options, |_| {})).await.unwrap();
        assert_eq!(report.steps[0].outputs["pages"], 1, "{report:?}");
        statuses.push(report.steps[0].status);
    }
    host.stop().await;
    assert_eq!(statuses, [StepStatus::Success, StepStatus::Cached]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_of_one_process_share_a_cold_compiled_cache() {
    // Both compile the same components into the same empty folder at once; neither
    // may trip on the other's partly written file.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let config = move |name: &str| copper_wasm::HostConfig {
        cache: root.join(name),
        workspace: root.clone(),
        compiled_cache: root.join("compiled"),
        components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
        ..copper_wasm::HostConfig::default()
    };
    // Spawned, so that each compiles on a thread of its own at the same time.
    let start = |name: &str| {
        tokio::spawn(copper_wasm::Host::start(
            config(name),
            tokio_util::sync::CancellationToken::new(),
        ))
    };
    let (a, b) = (start("a"), start("b"));
    let a = within(a).await.unwrap().expect("the first host starts");
    let b = within(b).await.unwrap().expect("the second host starts");
    let compiled = std::fs::read_dir(dir.path().join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    let artifacts = compiled.iter().filter(|n| n.ends_with(".cwasm")).count();
    let whole = |name: &String| name.ends_with(".cwasm") || name.ends_with(".describe.json");
    assert!(
        compiled.iter().all(whole) && artifacts >= 3,
        "whole artifacts and descriptions only, one of each per component: {compiled:?}"
    );
    a.stop().await;
    b.stop().await;
}
