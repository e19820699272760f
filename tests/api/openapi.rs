//! openapi.yaml is generated from the code (`grants_http::openapi::document`): each operation from
//! its handler's `#[utoipa::path]`, each body from the wire type the handler writes. The checked-in
//! file must be exactly what the code generates; `UPDATE_OPENAPI=1 cargo test --test api openapi`
//! rewrites it after a change to a route or a wire type.
use std::path::Path;

#[test]
fn openapi_yaml_is_what_the_code_generates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let generated = format!(
        "# Generated from the code by tests/api/openapi.rs (UPDATE_OPENAPI=1 to rewrite); do not edit.\n{}",
        serde_norway::to_string(&grants_http::openapi::document()).unwrap()
    );
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert!(
        on_disk == generated,
        "openapi.yaml differs from what the code generates: run `UPDATE_OPENAPI=1 cargo test --test api openapi` and \
         commit the result"
    );
}

/// Every operation names its errors, and every operation id is unique (schemathesis' config and
/// reports name operations by id).
#[test]
fn every_operation_has_an_id_and_error_responses() {
    let doc = grants_http::openapi::document();
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let ops = [&item.get, &item.post, &item.put, &item.delete];
        for op in ops.into_iter().flatten() {
            let id = op
                .operation_id
                .clone()
                .unwrap_or_else(|| panic!("{path}: no operationId"));
            assert!(ids.insert(id.clone()), "{id}: operationId used twice");
            assert!(
                op.responses.responses.keys().any(|s| s.starts_with('4')),
                "{id}: no 4xx response documented"
            );
        }
    }
}

/// Every event type the service delivers is published under `webhooks`, with its body's schema.
#[test]
fn every_webhook_event_type_is_published_with_its_schema() {
    let doc = grants_http::openapi::document();
    let yaml: serde_norway::Value = serde_norway::from_str(&serde_norway::to_string(&doc).unwrap()).unwrap();
    for t in grants_domain::webhook_messages::event_types() {
        let schema = &yaml["webhooks"][t.name]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["properties"]["type"]["enum"][0].as_str(),
            Some(t.name),
            "{}: {schema:?}",
            t.name
        );
        assert!(schema["properties"]["data"]["required"]
            .as_sequence()
            .is_some_and(|r| !r.is_empty()));
    }
}
