//! The contract of the credit types port ([`crate::credits::CreditTypeStore`]).
use super::tenant;
use crate::credits::CreditType;
use crate::ports::Store;

/// Credit type names are unique per tenant, case-insensitively: a duplicate returns the existing
/// type and writes nothing. Types list in id order.
pub async fn credit_type_names_are_unique_per_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    assert!(store.list_credit_types(&t).await.expect("list").is_empty());
    let ct = |name: &str| CreditType {
        id: format!("ct_{}", ulid::Ulid::generate()),
        name: name.to_owned(),
    };
    let (tokens, seats) = (ct("Tokens"), ct("Seats"));
    assert_eq!(store.insert_credit_type(&t, &seats).await.expect("insert"), None);
    assert_eq!(store.insert_credit_type(&t, &tokens).await.expect("insert"), None);
    let dup = ct("TOKENS");
    assert_eq!(
        store.insert_credit_type(&t, &dup).await.expect("insert"),
        Some(tokens.clone())
    );
    let mut both = vec![tokens.clone(), seats.clone()];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_credit_types(&t).await.expect("list"), both);
    assert_eq!(
        store.insert_credit_type(&other, &ct("tokens")).await.expect("insert"),
        None
    );
    assert_eq!(store.list_credit_types(&other).await.expect("list").len(), 1);
}
