//! `environments:`: one file resolved for each environment, key by key, with every
//! environment checked when none is named.

use livefire_spec::{LoadError, Options, load_str_with};

const FILE: &str = r#"version: 1
title: t
vars: { api: "http://127.0.0.1:8080", region: eu }
settings: { fail_on: high, settle: 10s }
environments:
  local: {}
  staging:
    vars: { api: "http://staging.internal:8080" }
    targets:
      link: { proxy: { listen: "127.0.0.1:29101", upstream: "10.0.0.7:5432" } }
  prod:
    production: true
    vars: { api: "http://orders.internal" }
    settings: { fail_on: medium }
targets:
  api: { http: "${api}" }
  link: { proxy: { listen: "127.0.0.1:19101", upstream: "127.0.0.1:5432" } }
timeline: []
"#;

fn load(text: &str, env: Option<&str>, every: bool) -> Result<livefire_spec::Loaded, LoadError> {
    load_str_with(
        "exp.yaml",
        text,
        &Options {
            env: env.map(str::to_owned),
            every_environment: every,
            ..Options::default()
        },
    )
}

#[test]
fn an_environment_overrides_vars_targets_and_settings_key_by_key() {
    let written = load(FILE, None, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.environment, None);
    assert_eq!(
        written.experiment.targets["api"].http.as_deref(),
        Some("http://127.0.0.1:8080")
    );

    let staging = load(FILE, Some("staging"), false).unwrap();
    let env = staging.environment.as_ref().unwrap();
    assert_eq!((env.name.as_str(), env.production), ("staging", false));
    let exp = &staging.experiment;
    assert_eq!(
        exp.targets["api"].http.as_deref(),
        Some("http://staging.internal:8080")
    );
    let link = exp.targets["link"].proxy.as_ref().unwrap();
    assert_eq!(link.upstream.as_deref(), Some("10.0.0.7:5432"));
    // Keys the environment does not name keep the file's value.
    assert_eq!(exp.vars["region"], "eu");
    assert_eq!(exp.settings.settle.unwrap().to_string(), "10s");

    let prod = load(FILE, Some("prod"), false).unwrap();
    assert!(prod.environment.as_ref().unwrap().production);
    assert_eq!(
        prod.experiment.settings.fail_on,
        Some(livefire_spec::FailOn::Medium)
    );
    assert_eq!(prod.experiment.settings.settle.unwrap().to_string(), "10s");
    // A loaded experiment is one environment's: the others are not carried along.
    assert!(prod.experiment.environments.is_empty());
}

#[test]
fn production_needs_confirmation_and_others_do_not() {
    let prod = load(FILE, Some("prod"), false).unwrap();
    let refused = prod.confirm(None).unwrap_err().to_string();
    assert!(refused.contains("`--confirm production`"), "{refused}");
    assert!(prod.confirm(Some("prod")).is_err());
    prod.confirm(Some("production")).unwrap();
    load(FILE, Some("staging"), false)
        .unwrap()
        .confirm(None)
        .unwrap();
}

#[test]
fn an_unknown_environment_lists_the_ones_the_file_has() {
    let err = load(FILE, Some("stagign"), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--env stagign: this file has no environment `stagign`; it has `local`, `prod`, `staging`"
    );
    let err = load("version: 1\ntitle: t\ntimeline: []\n", Some("prod"), false).unwrap_err();
    assert!(
        err.to_string().contains("declares no `environments:`"),
        "{err}"
    );
}

#[test]
fn a_mistake_in_one_environment_is_found_without_naming_it() {
    // staging's proxy has no port, prod's settings name an unknown key: both are found
    // by checking every environment, each at the line where it is written.
    let text = FILE
        .replace("upstream: \"10.0.0.7:5432\"", "upstream: \"10.0.0.7\"")
        .replace(
            "settings: { fail_on: medium }",
            "settings: { fail_on: medium, setle: 5s }",
        );
    let Err(LoadError::Invalid(report)) = load(&text, None, true) else {
        panic!("the broken environments were accepted");
    };
    let got: Vec<String> = report
        .errors()
        .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
        .collect();
    assert!(
        got.iter().any(|g| g.starts_with("10:61: ")
            && g.contains("`10.0.0.7` is not HOST:PORT (environment `staging`)")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|g| g.starts_with("14:34: ") && g.contains("unknown field `setle`")),
        "{got:#?}"
    );
    // Without every environment, staging is not resolved; the typing of each
    // environment is always checked.
    let Err(LoadError::Invalid(report)) = load(&text, None, false) else {
        panic!("an unknown settings key was accepted");
    };
    let errors: Vec<_> = report.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(errors[0].starts_with("unknown field `setle`"), "{report}");
}

#[test]
fn an_environment_may_use_a_variable_only_it_defines() {
    let text = "version: 1\ntitle: t\nenvironments:\n  ci: { vars: { port: \"9\" } }\ntargets:\n  api: { http: \"http://127.0.0.1:${port}\" }\ntimeline: []\n";
    let ci = load(text, Some("ci"), false).unwrap();
    assert_eq!(
        ci.experiment.targets["api"].http.as_deref(),
        Some("http://127.0.0.1:9")
    );
    // Without --env the file as written lacks `port`: run would refuse it, so validate
    // does, once, at the place it is used.
    let Err(LoadError::Invalid(report)) = load(text, None, true) else {
        panic!("an undefined variable was accepted");
    };
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(
        errors[0].message.contains("unknown name `port`"),
        "{report}"
    );
}
