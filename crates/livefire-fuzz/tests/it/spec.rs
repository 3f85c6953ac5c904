//! Spec loading: YAML and JSON, 3.0 and 3.1, files and URLs, `$ref`s across files, and
//! located errors for malformed specs.

use livefire_fuzz::spec;

use crate::target::{self, Mode};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn target_spec_loads_from_file_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "api.yaml", target::SPEC_YAML);
    let s = spec::load(&file).await.expect("load yaml");
    assert_eq!(s.version, "3.0.3");
    let names: Vec<&str> = s.operations.iter().map(|o| o.name.as_str()).collect();
    for (_, op) in target::DEFECTS {
        assert!(names.contains(op), "{op} missing from {names:?}");
    }
    let get_item = s.operations.iter().find(|o| o.id == "getItem").unwrap();
    // The shared path-level parameter and the $ref'd response schema are both there.
    assert_eq!(get_item.params[0].name, "itemId");
    let ok = get_item.response_for(200).unwrap();
    assert_eq!(
        ok.content[0].1.as_ref().unwrap()["required"],
        serde_json::json!(["id", "name", "price"])
    );
    assert!(
        s.operations
            .iter()
            .find(|o| o.name == "GET /admin/users")
            .unwrap()
            .secured()
    );
    assert!(
        !s.operations
            .iter()
            .find(|o| o.name == "GET /version")
            .unwrap()
            .secured()
    );

    let t = target::start(Mode::Correct, None, "127.0.0.1:0").await;
    let from_url = spec::load(&format!("{}/openapi.yaml", t.base_url()))
        .await
        .expect("load url");
    assert_eq!(from_url.operations.len(), s.operations.len());
}

#[tokio::test]
async fn json_openapi_31_with_refs_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("models")).unwrap();
    write(
        dir.path(),
        "models/pet.yaml",
        "Pet:\n  type: object\n  required: [name]\n  properties:\n    name: { type: string }\n    tag: { $ref: '#/Tag' }\nTag:\n  type: [string, 'null']\n",
    );
    let root = write(
        dir.path(),
        "api.json",
        r#"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/pets": {"post": {
              "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "models/pet.yaml#/Pet"}}}},
              "responses": {"201": {"description": "ok"}}}}}}"#,
    );
    let s = spec::load(&root).await.expect("load");
    let body = s.operations[0].body.as_ref().unwrap();
    assert_eq!(
        body.schema["properties"]["tag"]["type"],
        serde_json::json!(["string", "null"])
    );

    // YAML with integer status keys (unquoted 200) loads too.
    let yaml = write(
        dir.path(),
        "plain.yaml",
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        200: {description: ok}\n",
    );
    let s = spec::load(&yaml).await.expect("load yaml");
    assert!(s.operations[0].response_for(200).is_some());
}

#[tokio::test]
async fn malformed_specs_give_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let head = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "yaml syntax",
            format!("{head}paths:\n  /a: [\n"),
            "bad.yaml:",
        ),
        (
            "json syntax",
            "{\"openapi\": \"3.0.3\",\n \"paths\": {,}}".into(),
            "bad.yaml:2:",
        ),
        ("swagger 2", "swagger: '2.0'\n".into(), "#/swagger"),
        ("no version", "paths: {}\n".into(), "missing `openapi`"),
        (
            "unresolvable ref",
            format!(
                "{head}paths:\n  /a:\n    get:\n      responses:\n        '200': {{ $ref: '#/components/responses/Nope' }}\n"
            ),
            "#/paths/~1a/get/responses/200: cannot resolve $ref",
        ),
        (
            "missing file ref",
            format!(
                "{head}paths:\n  /a:\n    get:\n      responses:\n        '200': {{ $ref: 'other.yaml#/R' }}\n"
            ),
            "other.yaml",
        ),
        (
            "bad parameter location",
            format!(
                "{head}paths:\n  /a:\n    get:\n      parameters: [{{name: x, in: body}}]\n      responses: {{'200': {{description: ok}}}}\n"
            ),
            "#/paths/~1a/get/parameters/0: parameter `in: body`",
        ),
        (
            "no operations",
            format!("{head}paths: {{}}\n"),
            "no operations",
        ),
    ];
    for (what, text, want) in cases {
        let file = write(dir.path(), "bad.yaml", text);
        let err = spec::load(&file).await.expect_err(what).to_string();
        assert!(
            err.contains(want),
            "{what}: {err:?} should contain {want:?}"
        );
    }
    let err = spec::load("/nonexistent/spec.yaml")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read spec /nonexistent/spec.yaml"),
        "{err}"
    );
}
