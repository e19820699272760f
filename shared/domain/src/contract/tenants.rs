//! The contract of the tenants port ([`crate::tenants::TenantStore`]).
use super::{dec, tenant, ts, START};
use crate::money::Currency;
use crate::ports::Store;
use crate::tenants::TenantSettings;

/// `put_tenant_if_absent` writes once; `put_tenant` replaces. Numbers read back normalised.
pub async fn tenant_settings_put_if_absent_then_replace(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    assert_eq!(store.get_tenant(&t).await.expect("get"), None);
    let first = TenantSettings {
        tenant: t.clone(),
        currency: Currency::USD,
        members_may_purchase: true,
        min_price_per_credit: Some(dec("0.010")),
        allowed_redirect_origins: vec!["https://shop.example.com".to_owned(), "https://b.example".to_owned()],
        created_at: ts(START),
    };
    assert!(store.put_tenant_if_absent(&first).await.expect("put_if_absent"));
    let read = store.get_tenant(&t).await.expect("get").expect("settings");
    assert_eq!(read, first);
    assert_eq!(
        read.min_price_per_credit.map(|d| d.to_string()),
        Some("0.01".to_owned()),
        "numbers read back without trailing zeros"
    );
    let second = TenantSettings {
        currency: Currency::parse("eur").expect("eur"),
        members_may_purchase: false,
        min_price_per_credit: None,
        allowed_redirect_origins: Vec::new(),
        ..first.clone()
    };
    assert!(!store.put_tenant_if_absent(&second).await.expect("put_if_absent"));
    assert_eq!(store.get_tenant(&t).await.expect("get"), Some(first));
    store.put_tenant(&second).await.expect("put_tenant");
    assert_eq!(store.get_tenant(&t).await.expect("get"), Some(second));
}
