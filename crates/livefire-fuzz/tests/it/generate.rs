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
