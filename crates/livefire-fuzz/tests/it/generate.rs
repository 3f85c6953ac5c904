//! Generation: seeds reproduce, boundary values come first, values conform to schemas.

use livefire_fuzz::generate::{Expect, Generator, Pool};
use livefire_fuzz::schema::Validator;
use livefire_fuzz::spec;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::target;

async fn target_spec() -> spec::Spec {
    spec::parse_str(target::SPEC_YAML, std::path::Path::new("/"))
        .await
        .unwrap()
}

fn cases_for(spec: &spec::Spec, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = Generator::new();
    let pool = Pool::default();
    let mut out = Vec::new();
    for (i, op) in spec.operations.iter().enumerate() {
        out.push(format!("{:?}", g.valid_case(i, op, &mut rng, &pool)));
        for c in g.edge_cases(i, op, &mut rng, &pool) {
            out.push(format!("{c:?}"));
        }
    }
    out
}

#[tokio::test]
async fn same_seed_same_cases_other_seed_other_cases() {
    let s = target_spec().await;
    assert_eq!(cases_for(&s, 7), cases_for(&s, 7));
    assert_ne!(cases_for(&s, 7), cases_for(&s, 8));
}

#[tokio::test]
async fn boundary_values_first_and_valid_values_conform() {
    let s = target_spec().await;
    let (i, list) = s
        .operations
        .iter()
        .enumerate()
        .find(|(_, o)| o.name == "GET /items")
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut g = Generator::new();
    let cases = g.edge_cases(i, list, &mut rng, &Pool::default());
    let first: Vec<&str> = cases.iter().take(4).map(|c| c.note.as_str()).collect();
    assert_eq!(
        first,
        [
            "query limit = minimum",
            "query limit = minimum - 1",
            "query limit = maximum",
            "query limit = maximum + 1"
        ]
    );
    let zero = &cases[1];
    assert!(
        zero.params
            .iter()
            .any(|(_, n, v)| n == "limit" && *v == serde_json::json!(0))
    );
    assert_eq!(zero.expect, Expect::Invalid { unambiguous: false });
    let missing = cases
        .iter()
        .find(|c| c.note == "required query limit missing")
        .unwrap();
    assert_eq!(missing.expect, Expect::Invalid { unambiguous: true });

    // Valid values conform to their schemas, for every parameter and body.
    let mut v = Validator::new();
    for seed in 0..50 {
        let mut rng = StdRng::seed_from_u64(seed);
        for (i, op) in s.operations.iter().enumerate() {
            let c = g.valid_case(i, op, &mut rng, &Pool::default());
            for (_, name, value) in &c.params {
                let p = op.params.iter().find(|p| &p.name == name).unwrap();
                assert_eq!(
                    v.validate(&p.schema, value),
                    None,
                    "{} {name} = {value}",
                    op.name
                );
            }
            if let (Some(livefire_fuzz::generate::CaseBody::Json(body)), Some(b)) =
                (&c.body, &op.body)
            {
                assert_eq!(v.validate(&b.schema, body), None, "{} body {body}", op.name);
            }
        }
    }
}

/// Schemas that ask for absurd values must give bounded cases, never a panic or abort.
#[tokio::test]
async fn hostile_schemas_generate_bounded_cases() {
    let spec_text = r##"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
      "paths": {"/h/{p}": {"post": {
        "parameters": [
          {"name": "p", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 9.3e18, "exclusiveMinimum": true}},
          {"name": "f", "in": "query", "schema": {"type": "number", "minimum": -1e308, "maximum": 1e308}},
          {"name": "s", "in": "query", "schema": {"type": "string", "minLength": 1000000000000}},
          {"name": "r", "in": "query", "schema": {"type": "string", "pattern": "^a{1000000000}$"}},
          {"name": "i", "in": "header", "schema": {"type": "integer", "maximum": -9.3e18}}
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
        "responses": {"200": {"description": "ok"}}}}},
      "components": {"schemas": {"Node": {"type": "object", "properties": {
        "next": {"$ref": "#/components/schemas/Node"},
        "many": {"type": "array", "minItems": 1000000000, "items": {"type": "string"}}}}}}}"##;
    let s = spec::parse_str(spec_text, std::path::Path::new("/"))
        .await
        .expect("loads");
    let mut g = Generator::new();
    let mut rng = StdRng::seed_from_u64(3);
    let pool = Pool::default();
    let op = &s.operations[0];
    let mut cases = vec![g.valid_case(0, op, &mut rng, &pool)];
    cases.extend(g.edge_cases(0, op, &mut rng, &pool));
    for c in &cases {
        let size: usize = c
            .params
            .iter()
            .map(|(_, _, v)| v.to_string().len())
            .sum::<usize>()
            + c.body.as_ref().map_or(0, |b| format!("{b:?}").len());
        assert!(size < 2_000_000, "{} is {size} bytes", c.note);
    }

    // References that fan out (each level refers to the next twice) are refused.
    let mut defs = String::new();
    for i in 0..40 {
        defs.push_str(&format!(
            r##""S{i}": {{"type": "object", "properties": {{"a": {{"$ref": "#/components/schemas/S{n}"}}, "b": {{"$ref": "#/components/schemas/S{n}"}}}}}},"##,
            n = i + 1
        ));
    }
    defs.push_str(r#""S40": {"type": "string"}"#);
    let bomb = format!(
        r##"{{"openapi": "3.0.3", "info": {{"title": "t", "version": "1"}},
        "paths": {{"/b": {{"post": {{"requestBody": {{"content": {{"application/json": {{"schema": {{"$ref": "#/components/schemas/S0"}}}}}}}},
        "responses": {{"200": {{"description": "ok"}}}}}}}}}},
        "components": {{"schemas": {{{defs}}}}}}}"##
    );
    let err = spec::parse_str(&bomb, std::path::Path::new("/"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expands to more than"), "{err}");
}
