//! Credit types and the Metronome view of grants on the in-memory store: the catalogue, grants by
//! customer and credit type with uniqueness keys, voids that free a key, edits checked against
//! usage, listings paged by id with filters, and customer ledgers.
#![allow(clippy::unwrap_used)]
mod common;

use common::{credits, dec, err, key, label, new_entitlement, new_grant, ts, World};
use grants_domain::credits::{
    self, CreditType, CreditTypeCache, GrantFilter, NewCreditGrant, DEFAULT_CREDIT_TYPE_ID, DEFAULT_CREDIT_TYPE_NAME,
};
use grants_domain::entitlements::NewEntitlement;
use grants_domain::ledger::EntryKind;
use grants_domain::model::{Entitlement, Grant};
use grants_domain::usage::{self, NewUsage};
use grants_domain::{entitlements, GrantId, NonNegative, Priority};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

fn cache() -> CreditTypeCache {
    CreditTypeCache::new(Duration::from_secs(60))
}

fn metronome_grant(customer: &str, credit_type: &str, amount: &str) -> NewCreditGrant {
    NewCreditGrant {
        customer_id: label(customer),
        amount: credits(amount),
        credit_type_id: credit_type.to_owned(),
        paid_amount: NonNegative::parse("0").unwrap(),
        paid_credit_type_id: DEFAULT_CREDIT_TYPE_ID.to_owned(),
        name: label("Promo"),
        priority: Priority::new(Decimal::ONE).unwrap(),
        expires_at: ts("2031-01-01T00:00:00Z"),
        effective_at: None,
        reason: Some("launch".to_owned()),
        uniqueness_key: None,
        custom_fields: BTreeMap::new(),
        credit_grant_type: None,
        product_ids: Vec::new(),
    }
}

async fn catalogue(w: &World) -> Vec<CreditType> {
    credits::catalogue(&w.store, &cache(), &w.tenant).await.unwrap()
}

async fn grant(w: &World, req: NewCreditGrant) -> Grant {
    credits::create_credit_grant(&w.store, &w.clock, &catalogue(w).await, &w.tenant, req)
        .await
        .unwrap()
}

async fn in_type(w: &World, customer: &str, ct: &CreditType) -> Entitlement {
    w.entitlement_with(NewEntitlement {
        pricing_unit_id: Some(label(&ct.id)),
        ..new_entitlement(customer)
    })
    .await
}

#[tokio::test]
async fn credit_type_names_are_unique_and_the_default_comes_first() {
    let w = World::at("2030-03-14T10:00:00Z");
    let c = cache();
    assert_eq!(
        credits::catalogue(&w.store, &c, &w.tenant).await.unwrap(),
        [CreditType::default_type()]
    );
    let tokens = credits::create_credit_type(&w.store, &c, &w.tenant, label("Tokens"))
        .await
        .unwrap();
    assert!(tokens.id.starts_with("ct_"));
    assert_eq!(
        credits::catalogue(&w.store, &c, &w.tenant).await.unwrap(),
        [CreditType::default_type(), tokens.clone()],
        "this instance sees its own new type at once"
    );
    assert_eq!(
        err(credits::create_credit_type(&w.store, &c, &w.tenant, label("TOKENS")).await),
        format!("Exists({tokens:?})")
    );
    assert_eq!(
        err(
            credits::create_credit_type(&w.store, &c, &w.tenant, label(&DEFAULT_CREDIT_TYPE_NAME.to_lowercase())).await
        ),
        format!("Exists({:?})", CreditType::default_type())
    );
    // Made on another instance: a cached catalogue is read again when it lacks an id asked for.
    let seats = credits::create_credit_type(&w.store, &cache(), &w.tenant, label("Seats"))
        .await
        .unwrap();
    assert_eq!(
        credits::catalogue(&w.store, &c, &w.tenant).await.unwrap().len(),
        2,
        "cached"
    );
    let covering = credits::catalogue_covering(&w.store, &c, &w.tenant, &[seats.id.as_str()])
        .await
        .unwrap();
    assert!(covering.contains(&seats));
    assert_eq!(credits::name_of(&covering, &seats.id), "Seats");
    // A pricing unit must be one of the tenant's types; the default one is stored as none.
    let unknown = NewEntitlement {
        pricing_unit_id: Some(label("ct_nope")),
        ..new_entitlement("c")
    };
    assert_eq!(
        err(entitlements::create_entitlement(&w.store, &w.clock, &w.tenant, unknown).await),
        "UnknownPricingUnit"
    );
    let default = w
        .entitlement_with(NewEntitlement {
            pricing_unit_id: Some(label(DEFAULT_CREDIT_TYPE_ID)),
            ..new_entitlement("c")
        })
        .await;
    assert_eq!(default.pricing_unit_id, None);
    assert_eq!(in_type(&w, "c", &seats).await.pricing_unit_id, Some(seats.id));
}

#[tokio::test]
async fn grants_go_to_the_customers_oldest_active_entitlement_in_the_credit_type() {
    let w = World::at("2030-03-14T10:00:00Z");
    let tokens = credits::create_credit_type(&w.store, &cache(), &w.tenant, label("Tokens"))
        .await
        .unwrap();
    let usd = w.entitlement("cus_1").await;
    let first = in_type(&w, "cus_1", &tokens).await;
    std::thread::sleep(Duration::from_millis(2));
    let second = in_type(&w, "cus_1", &tokens).await;
    assert!(first.id < second.id);

    let g = grant(&w, metronome_grant("cus_1", &tokens.id, "50")).await;
    assert_eq!(
        (g.entitlement_id.clone(), g.credit_type_id.clone()),
        (first.id.clone(), Some(tokens.id.clone()))
    );
    assert_eq!(g.effective_at, first.current_period_start);
    assert_eq!(g.details.name.as_deref(), Some("Promo"));
    assert_eq!(
        g.details.paid_credit_type_id, None,
        "the default type is stored as none"
    );
    let d = grant(&w, metronome_grant("cus_1", DEFAULT_CREDIT_TYPE_ID, "5")).await;
    assert_eq!((d.entitlement_id, d.credit_type_id), (usd.id, None));
    entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &first.id)
        .await
        .unwrap();
    let g2 = grant(&w, metronome_grant("cus_1", &tokens.id, "50")).await;
    assert_eq!(g2.entitlement_id, second.id, "the oldest active one");

    let cat = catalogue(&w).await;
    let create = |req: NewCreditGrant| {
        let (w, cat) = (&w, cat.clone());
        async move { credits::create_credit_grant(&w.store, &w.clock, &cat, &w.tenant, req).await }
    };
    assert_eq!(
        err(create(metronome_grant("cus_1", "ct_nope", "1")).await),
        r#"UnknownCreditType("grant_amount.credit_type_id")"#
    );
    let bad_paid = NewCreditGrant {
        paid_credit_type_id: "ct_nope".to_owned(),
        ..metronome_grant("cus_1", &tokens.id, "1")
    };
    assert_eq!(
        err(create(bad_paid).await),
        r#"UnknownCreditType("paid_amount.credit_type_id")"#
    );
    assert_eq!(
        err(create(metronome_grant("cus_2", &tokens.id, "1")).await),
        "CustomerNotFound"
    );
    let backwards = NewCreditGrant {
        expires_at: second.current_period_start,
        ..metronome_grant("cus_1", &tokens.id, "1")
    };
    assert_eq!(err(create(backwards).await), "ExpiresNotAfterEffective");
}

#[tokio::test]
async fn a_uniqueness_key_is_used_once_until_its_grant_is_voided_with_release() {
    let w = World::at("2030-03-14T10:00:00Z");
    w.entitlement("cus_1").await;
    let unique = |amount: &str| NewCreditGrant {
        uniqueness_key: Some(key("u-1")),
        ..metronome_grant("cus_1", DEFAULT_CREDIT_TYPE_ID, amount)
    };
    let g = grant(&w, unique("10")).await;
    assert_eq!(g.details.uniqueness_key.as_deref(), Some("u-1"));
    let cat = catalogue(&w).await;
    for amount in ["10", "20"] {
        assert_eq!(
            err(credits::create_credit_grant(&w.store, &w.clock, &cat, &w.tenant, unique(amount)).await),
            "UniquenessKeyUsed",
            "whatever the parameters"
        );
    }
    let voided = credits::void_credit_grant(&w.store, &w.clock, &w.tenant, &g.id, false)
        .await
        .unwrap();
    assert_eq!(voided.voided_at, Some(ts("2030-03-14T10:00:00Z")));
    assert_eq!(
        err(credits::create_credit_grant(&w.store, &w.clock, &cat, &w.tenant, unique("10")).await),
        "UniquenessKeyUsed",
        "a void alone keeps the key"
    );
    w.clock.advance(60);
    let again = credits::void_credit_grant(&w.store, &w.clock, &w.tenant, &g.id, true)
        .await
        .unwrap();
    assert_eq!(again.voided_at, voided.voided_at, "idempotent");
    let reused = grant(&w, unique("10")).await;
    assert_ne!(reused.id, g.id);
    assert_eq!(
        err(credits::void_credit_grant(&w.store, &w.clock, &w.tenant, &GrantId::generate(), true).await),
        "NotFound"
    );
}

#[tokio::test]
async fn edits_change_name_and_expiry_but_not_to_before_usage() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let g = grant(&w, metronome_grant("cus_1", DEFAULT_CREDIT_TYPE_ID, "10")).await;
    usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            entitlement_id: e.id.clone(),
            event_id: label("evt-1"),
            amount: credits("1"),
            occurred_at: Some(ts("2030-03-10T00:00:00Z")),
            pending: false,
        },
    )
    .await
    .unwrap();
    let edited = credits::edit_credit_grant(
        &w.store,
        &w.tenant,
        &g.id,
        Some(label("Renamed")),
        Some(ts("2030-03-10T00:00:01Z")),
        Some("PAID".to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(edited.details.name.as_deref(), Some("Renamed"));
    assert_eq!(edited.details.credit_grant_type.as_deref(), Some("PAID"));
    assert_eq!(
        (edited.expires_at, edited.version),
        (Some(ts("2030-03-10T00:00:01Z")), 2)
    );
    assert_eq!(
        err(credits::edit_credit_grant(&w.store, &w.tenant, &g.id, None, Some(ts("2030-03-10T00:00:00Z")), None).await),
        format!("ExpiresBeforeUsage({:?})", ts("2030-03-10T00:00:00Z"))
    );
    assert_eq!(
        err(credits::edit_credit_grant(&w.store, &w.tenant, &g.id, None, Some(g.effective_at), None).await),
        "ExpiresNotAfterEffective"
    );
    assert_eq!(
        err(credits::edit_credit_grant(&w.store, &w.tenant, &GrantId::generate(), None, None, None).await),
        "NotFound"
    );
}

#[tokio::test]
async fn listings_page_by_id_with_filters_and_include_the_usage() {
    let w = World::at("2030-03-14T10:00:00Z");
    let tokens = credits::create_credit_type(&w.store, &cache(), &w.tenant, label("Tokens"))
        .await
        .unwrap();
    let a = w.entitlement("cus_a").await;
    let b = in_type(&w, "cus_b", &tokens).await;
    let mut ids = Vec::new();
    for (customer, ct) in [
        ("cus_a", DEFAULT_CREDIT_TYPE_ID),
        ("cus_b", tokens.id.as_str()),
        ("cus_a", DEFAULT_CREDIT_TYPE_ID),
    ] {
        ids.push(grant(&w, metronome_grant(customer, ct, "10")).await.id);
    }
    let late = NewCreditGrant {
        effective_at: Some(ts("2030-04-01T00:00:00Z")),
        expires_at: ts("2030-04-15T00:00:00Z"),
        ..metronome_grant("cus_a", DEFAULT_CREDIT_TYPE_ID, "10")
    };
    ids.push(grant(&w, late).await.id);
    let voided = grant(&w, metronome_grant("cus_b", &tokens.id, "10")).await;
    credits::void_credit_grant(&w.store, &w.clock, &w.tenant, &voided.id, false)
        .await
        .unwrap();
    // A direct grant of cus_a (never expires) shows in the same listing.
    ids.push(w.grant(new_grant(&a.id, "10", "direct")).await.id);
    ids.sort();
    usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            entitlement_id: b.id.clone(),
            event_id: label("evt-b"),
            amount: credits("4"),
            occurred_at: None,
            pending: false,
        },
    )
    .await
    .unwrap();

    let list = |filter: GrantFilter, limit: usize, after: Option<String>| {
        let w = &w;
        async move {
            let (page, next) = credits::list_credit_grants(&w.store, &w.tenant, &filter, limit, after.as_deref())
                .await
                .unwrap();
            (page, next)
        }
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = list(GrantFilter::default(), 2, after.clone()).await;
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|g| g.grant.id.clone()));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every live grant once, in id order; voided ones left out");

    let (b_only, _) = list(
        GrantFilter {
            customer_ids: vec!["cus_b".to_owned()],
            ..GrantFilter::default()
        },
        10,
        None,
    )
    .await;
    assert_eq!(b_only.len(), 1);
    assert_eq!(b_only[0].grant.remaining, dec("6"), "read fresh");
    assert_eq!(b_only[0].days.len(), 1, "with the entitlement's usage, by day");
    let (typed, _) = list(
        GrantFilter {
            credit_type_ids: vec![DEFAULT_CREDIT_TYPE_ID.to_owned()],
            ..GrantFilter::default()
        },
        10,
        None,
    )
    .await;
    assert_eq!(typed.len(), 4);
    let (effective, _) = list(
        GrantFilter {
            effective_before: Some(ts("2030-04-01T00:00:00Z")),
            not_expiring_before: Some(ts("2030-12-31T00:00:00Z")),
            ..GrantFilter::default()
        },
        10,
        None,
    )
    .await;
    assert_eq!(
        effective.len(),
        4,
        "the April grant is neither effective before April nor unexpired"
    );
    let (by_id, next) = list(
        GrantFilter {
            grant_ids: vec![ids[0].to_string(), voided.id.to_string(), "grt_unknown".to_owned()],
            ..GrantFilter::default()
        },
        10,
        None,
    )
    .await;
    assert_eq!((by_id.len(), next), (1, None));
}

#[tokio::test]
async fn a_customer_ledger_runs_through_grants_and_deductions() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let g = grant(&w, metronome_grant("cus_1", DEFAULT_CREDIT_TYPE_ID, "100")).await;
    usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            entitlement_id: e.id.clone(),
            event_id: label("evt-1"),
            amount: credits("30"),
            occurred_at: Some(ts("2030-03-10T00:00:00Z")),
            pending: false,
        },
    )
    .await
    .unwrap();
    let (customers, next) = credits::list_entries(&w.store, &w.clock, &w.tenant, &Default::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(next, None);
    assert_eq!(customers.len(), 1);
    let (customer, ledgers) = &customers[0];
    assert_eq!(customer, "cus_1");
    let ledger = &ledgers[0];
    assert_eq!(ledger.credit_type_id, DEFAULT_CREDIT_TYPE_ID);
    let entries: Vec<(EntryKind, Decimal, Decimal)> = ledger
        .entries
        .iter()
        .map(|x| (x.kind, x.amount, x.running_balance))
        .collect();
    assert_eq!(
        entries,
        [
            (EntryKind::Grant, dec("100"), dec("100")),
            (EntryKind::Deduction, dec("-30"), dec("70")),
        ]
    );
    assert_eq!(ledger.entries[0].grant_id, g.id);
    assert_eq!(
        (ledger.starting_excluding, ledger.ending_excluding),
        (Decimal::ZERO, dec("70"))
    );
}
