//! copili's README pipelines read as workflows, and its mistakes named by line.

use super::*;

/// The quick example of copili's README, as it is (tests/fixtures/copili).
const QUICK: &str = include_str!("../../../tests/fixtures/copili/quick.yaml");

fn read(text: &str) -> Result<Pipeline, WorkflowError> {
    parse(
        text,
        Path::new("/pipelines/p.yaml"),
        &Environment::default(),
    )
}

fn docker(pipeline: &Pipeline, name: &str) -> DockerSpec {
    let spec = pipeline.services.iter().find(|s| s.name == name).unwrap();
    match &spec.backend {
        BackendSpec::Docker(docker) => (**docker).clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_quick_example_is_a_workflow_of_its_static_containers_and_a_scheduled_one() {
    assert!(is_pipeline(QUICK));
    let pipeline = read(QUICK).unwrap();
    assert_eq!(pipeline.name, "ExmaplePipeline");
    let workflow = &pipeline.workflow;
    assert_eq!(workflow.name, "ExmaplePipeline");
    let steps: Vec<(&str, &str, Vec<&str>)> = workflow
        .steps
        .iter()
        .map(|s| {
            let needs = s.needs.iter().map(String::as_str).collect();
            (s.id.as_str(), s.action.as_str(), needs)
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("dataloader_02", "dataloader_02/run", vec!["dataloader_01"]),
            ("dataloader_01", "dataloader_01/run", vec![]),
            (
                "dataloader_03",
                "dataloader_03/run",
                vec!["dataloader_02", "dataloader_01"]
            ),
        ]
    );
    assert_eq!(
        workflow.steps[0].line, 2,
        "a step is where its description is"
    );
    assert_eq!(workflow.source, Path::new("/pipelines/p.yaml"));

    let (services, text) = pipeline.services_workflow.as_ref().unwrap();
    assert!(text.contains("\"cron\": \"0 0 * * *\""), "{text}");
    let again = Workflow::parse(&pipeline.text, Path::new("again.yaml")).unwrap();
    assert_eq!(again.steps.len(), 3, "the text reads as the same workflow");
    assert_eq!(services.name, "ExmaplePipeline-services");
    assert_eq!(services.steps.len(), 1);
    assert!(
        services.steps[0].needs.is_empty(),
        "the static ones ran before"
    );
    assert_eq!(services.on.schedules.len(), 1);
    assert_eq!(services.on.schedules[0].cron, DEFAULT_SERVICE_SCHEDULE);
    let after = services.on.workflow_run.as_ref().unwrap();
    assert_eq!(after.workflows, ["ExmaplePipeline"]);

    assert_eq!(pipeline.services.len(), 4);
    let loader = docker(&pipeline, "dataloader_02");
    assert_eq!(loader.mode, Mode::Lambda);
    assert_eq!(
        loader.container.image,
        ImageSource::Image("stakater/exit-container:latest".into())
    );
    assert_eq!(loader.container.env["EXIT_CODE"], "0");
    let spec = pipeline
        .services
        .iter()
        .find(|s| s.name == "dataloader_02")
        .unwrap();
    assert_eq!(spec.topics(), ["dataloader_02/run"]);
}

#[test]
fn the_json_examples_with_repo_dependency_and_a_sidecar_read_too() {
    let json = include_str!("../../../tests/fixtures/copili/readme.json");
    assert!(is_pipeline(json));
    let pipeline = read(json).unwrap();
    assert!(pipeline.services_workflow.is_none());
    let second = &pipeline.workflow.steps[1];
    assert_eq!(second.needs, ["my-first-container"]);
    let docker = docker(&pipeline, "my-second-container");
    assert_eq!(docker.sidecars.len(), 1);
    assert_eq!(docker.sidecars[0].name, "redis01");
    assert_eq!(
        docker.sidecars[0].container.image,
        ImageSource::Image("redis:latest".into())
    );
}

#[test]
fn volumes_commands_tags_logins_and_the_schedule_are_read() {
    let text = "\
p:
  - name: loader
    image_repo: registry.example:5000/team/loader
    tag: v2
    command: sh -c 'echo \"a b\"'
    volumes: {\"/tmp/data\": {\"bind\": \"/data/\", \"mode\": \"ro\"}, \"./cache\": {\"bind\": \"/cache\"}}
    image_reg_username: me
    image_reg_password: ${COPILI_TEST_PASSWORD}
    exlude_in_env: [PROD]
service_schedule: '*/10 * * * *'
";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "COPILI_TEST_PASSWORD=s3cret\n").unwrap();
    let env = Environment::load(dir.path()).unwrap();
    let pipeline = parse(text, Path::new("/pipelines/p.yaml"), &env).unwrap();
    let docker = docker(&pipeline, "loader");
    let container = &docker.container;
    assert_eq!(
        container.image,
        ImageSource::Image("registry.example:5000/team/loader:v2".into())
    );
    assert_eq!(
        container.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"a b\""]
    );
    let volumes: Vec<String> = container.volumes.iter().map(Volume::bind).collect();
    assert_eq!(volumes, ["/pipelines/cache:/cache", "/tmp/data:/data:ro"]);
    let login = container.login.as_ref().unwrap();
    assert_eq!(login.password, "s3cret");
    let shown = format!("{container:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(pipeline.workflow.steps[0].exclude_in_env, ["PROD"]);
    assert!(pipeline.services_workflow.is_none(), "no service container");
}

#[test]
fn mistakes_are_named_with_their_line_and_field() {
    let cases = [
        (
            "p:\n  - name: a\n    image_repo: x\n    dependencies: [ghost]\n",
            "/pipelines/p.yaml:4: field `p[0].dependencies`: `a` depends on `ghost`, which this pipeline does not have (its containers: a)",
        ),
        (
            "p:\n  - name: a\n    image_repo: x\n    colour: red\n",
            "/pipelines/p.yaml:4: field `p[0].colour`: copili knows no `colour`",
        ),
        (
            "p:\n  - name: a\n",
            "/pipelines/p.yaml:2: field `p[0].image_repo`: container `a` needs an `image_repo`",
        ),
        (
            "p:\n  - name: a\n    image_repo: x\n  - name: a\n    image_repo: y\n",
            "/pipelines/p.yaml:4: field `p[1].name`: two containers are named `a`",
        ),
        (
            "p:\n  - name: a\n    image_repo: x\n    dependencies: [b]\n  - name: b\n    image_repo: y\n    dependencies: [a]\n",
            "/pipelines/p.yaml:4: field `p[0].dependencies`: the steps a -> b -> a need each other in a cycle",
        ),
        (
            "p:\n  - name: a\n    image_repo: x\nservice_schedule: every day\n",
            "/pipelines/p.yaml:4: field `service_schedule`: ",
        ),
        (
            "p:\n  - name: a b\n    image_repo: x\n",
            "/pipelines/p.yaml:2: field `p[0].name`: `a b` cannot name a service",
        ),
    ];
    for (text, expected) in cases {
        let error = read(text).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error}\nnot\n{expected}");
    }
    assert!(!is_pipeline("- action: fetcher/fetch\n"));
    assert!(!is_pipeline("name: w\nsteps:\n  - action: a/b\n"));
}
