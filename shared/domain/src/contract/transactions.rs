//! The contract's checks across ports: DynamoDB's limits on one transaction.
use super::{bumped, delta, stored_entitlement, stored_grant, tenant, usage, write};
use crate::ports::{Store, StoreError, UsageWrite};
use rust_decimal::Decimal;

/// A usage write over more grants than one transaction holds (100 items) is refused (DynamoDB's
/// validation), and nothing is written. (Two writes to one item in a transaction are not checked
/// here: DynamoDB refuses them, DynamoDB Local reports a failed condition.)
pub async fn oversized_transactions_are_refused(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let mut writes = Vec::new();
    for _ in 0..99 {
        let g = stored_grant(store, &e, "1").await;
        writes.push(bumped(&g, |g| g.remaining = Decimal::ZERO));
    }
    let u = usage(&e, "evt-big", "99", Vec::new());
    assert!(
        matches!(
            store.write_usage(&u, delta("99", "0"), &writes, None).await,
            Err(StoreError::Rejected(_))
        ),
        "101 items"
    );
    assert_eq!(store.get_usage(&t, &e.id, "evt-big").await.expect("get"), None);
    assert!(matches!(
        write(store, &u, delta("98", "0"), &writes[..98]).await,
        UsageWrite::Written
    ));
}
