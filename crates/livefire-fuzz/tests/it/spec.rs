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
    let sw = "swagger: '2.0'\ninfo: {title: t, version: '1'}\n";
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
        (
            "swagger 1.2",
            "swagger: '1.2'\n".into(),
            "#/swagger: unsupported Swagger version",
        ),
        (
            "swagger cookie parameter",
            format!(
                "{sw}paths:\n  /a:\n    get:\n      parameters: [{{name: x, in: cookie}}]\n      responses: {{'200': {{description: ok}}}}\n"
            ),
            "#/paths/~1a/get/parameters/0/in: parameter `in: cookie`",
        ),
        (
            "swagger missing shared parameter",
            format!(
                "{sw}paths:\n  /a:\n    get:\n      parameters: [{{$ref: '#/parameters/Nope'}}]\n      responses: {{'200': {{description: ok}}}}\n"
            ),
            "#/paths/~1a/get/parameters/0/$ref: cannot resolve $ref \"#/parameters/Nope\"",
        ),
        (
            "swagger unknown security type",
            format!(
                "{sw}securityDefinitions: {{k: {{type: magic}}}}\npaths:\n  /a:\n    get:\n      responses: {{'200': {{description: ok}}}}\n"
            ),
            "#/securityDefinitions/k/type: security type `magic`",
        ),
        (
            "swagger missing definition",
            format!(
                "{sw}paths:\n  /a:\n    get:\n      responses: {{'200': {{description: ok, schema: {{$ref: '#/definitions/Nope'}}}}}}\n"
            ),
            "cannot resolve $ref \"#/components/schemas/Nope\"",
        ),
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

/// httpbin's own Swagger 2.0 document, as served at `/spec.json` by httpbin 0.10.4
/// (PyPI `httpbin`, with flasgger 0.9.7.1) and saved unchanged.
const HTTPBIN_SWAGGER: &str = include_str!("httpbin_swagger.json");

#[tokio::test]
async fn httpbin_swagger_2_document_is_read() {
    let s = spec::parse_str(HTTPBIN_SWAGGER, std::path::Path::new("."))
        .await
        .expect("httpbin's swagger 2.0 document loads");
    assert_eq!(s.version, "2.0");
    let names: Vec<&str> = s.operations.iter().map(|o| o.name.as_str()).collect();
    for want in [
        "GET /status/{codes}",
        "DELETE /delay/{delay}",
        "GET /response-headers",
        "GET /redirect-to",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let status = s
        .operations
        .iter()
        .find(|o| o.name == "GET /status/{codes}")
        .unwrap();
    assert_eq!(status.params[0].name, "codes");
    assert_eq!(status.params[0].schema["type"], "string");
    // `produces: [text/plain]` and no schema: the 200 lists the media type.
    assert_eq!(status.response_for(200).unwrap().content[0].0, "text/plain");
}

#[tokio::test]
async fn swagger_2_constructs_become_their_openapi_3_forms() {
    let text = r#"
swagger: '2.0'
info: {title: shop, version: '1'}
host: shop.example
basePath: /v1
consumes: [application/json]
produces: [application/json]
securityDefinitions:
  key: {type: apiKey, name: X-Key, in: header}
  basic: {type: basic}
parameters:
  Limit: {name: limit, in: query, type: integer, minimum: 1, maximum: 50}
definitions:
  Item:
    type: object
    required: [name]
    properties:
      name: {type: string}
      tags: {type: array, items: {$ref: '#/definitions/Tag'}}
  Tag: {type: string, enum: [a, b]}
paths:
  /items:
    get:
      parameters:
        - $ref: '#/parameters/Limit'
        - {name: ids, in: query, type: array, items: {type: integer, format: int64}}
      responses:
        '200': {description: ok, schema: {type: array, items: {$ref: '#/definitions/Item'}}}
    post:
      security: [{key: []}]
      parameters:
        - {name: item, in: body, required: true, schema: {$ref: '#/definitions/Item'}}
      responses: {'201': {description: made}}
  /login:
    post:
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: user, in: formData, type: string, required: true}
        - {name: remember, in: formData, type: boolean}
      responses: {'204': {description: in}}
"#;
    let s = spec::parse_str(text, std::path::Path::new("."))
        .await
        .expect("swagger 2.0 loads");
    let op = |name: &str| s.operations.iter().find(|o| o.name == name).unwrap();

    let list = op("GET /items");
    assert_eq!(list.params[0].name, "limit");
    assert_eq!(list.params[0].schema["maximum"], 50);
    assert_eq!(list.params[1].schema["items"]["format"], "int64");
    let ok = list.response_for(200).unwrap();
    assert_eq!(ok.content[0].0, "application/json");
    let item = &ok.content[0].1.as_ref().unwrap()["items"];
    assert_eq!(item["required"], serde_json::json!(["name"]));
    assert_eq!(
        item["properties"]["tags"]["items"]["enum"],
        serde_json::json!(["a", "b"])
    );

    let make = op("POST /items");
    let body = make
        .body
        .as_ref()
        .expect("in: body becomes the request body");
    assert!(body.required);
    assert_eq!(body.media_type, "application/json");
    assert_eq!(body.schema["required"], serde_json::json!(["name"]));
    assert!(make.secured());
    assert!(matches!(
        s.security_schemes.get("key"),
        Some(spec::SecurityScheme::ApiKey { name, .. }) if name == "X-Key"
    ));
    assert!(matches!(
        s.security_schemes.get("basic"),
        Some(spec::SecurityScheme::Http { scheme }) if scheme == "basic"
    ));

    let login = op("POST /login");
    let form = login.body.as_ref().expect("formData becomes a form body");
    assert_eq!(form.media_type, "application/x-www-form-urlencoded");
    assert_eq!(form.schema["required"], serde_json::json!(["user"]));
    assert_eq!(form.schema["properties"]["remember"]["type"], "boolean");
}

#[tokio::test]
async fn swagger_2_common_type_names_are_read_as_their_types() {
    // httpbin's generated document writes `type: int` for its path parameters; the
    // common names of Swagger 2.0's data type table are read as the types they name.
    for (written, read) in [
        ("int", "integer"),
        ("long", "integer"),
        ("float", "number"),
        ("double", "number"),
        ("bool", "boolean"),
        ("integer", "integer"),
        ("string", "string"),
    ] {
        let text = format!(
            "swagger: '2.0'\ninfo: {{title: t, version: '1'}}\npaths:\n  /bytes/{{n}}:\n    get:\n      \
             parameters: [{{name: n, in: path, required: true, type: {written}}}]\n      \
             responses: {{'200': {{description: ok}}}}\n"
        );
        let s = spec::parse_str(&text, std::path::Path::new("."))
            .await
            .unwrap_or_else(|e| panic!("type {written}: {e}"));
        assert_eq!(
            s.operations[0].params[0].schema["type"], read,
            "type {written}"
        );
    }
    let s = spec::parse_str(HTTPBIN_SWAGGER, std::path::Path::new("."))
        .await
        .unwrap();
    let bytes = s
        .operations
        .iter()
        .find(|o| o.name == "GET /bytes/{n}")
        .unwrap();
    assert_eq!(bytes.params[0].schema["type"], "integer");
}
