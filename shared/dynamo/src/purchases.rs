//! [`PurchaseStore`] on DynamoDB: Invoices and payment-session lookups.

use crate::prelude::*;

pub(crate) fn invoice_item(i: &Invoice) -> Item {
    let t = i.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(invoice_pk(t, i.id.as_str()))),
        (SK.to_owned(), s(INVOICE_SK)),
        ("type".to_owned(), s("invoice")),
        ("id".to_owned(), s(i.id.as_str())),
        ("tenant".to_owned(), s(t)),
        ("entitlement_id".to_owned(), s(i.entitlement_id.as_str())),
        ("customer_id".to_owned(), s(&i.customer_id)),
        ("grant_amount".to_owned(), n(i.grant_amount.value())),
        ("price".to_owned(), n(i.price.value())),
        ("currency".to_owned(), s(i.price.currency().code())),
        ("grant_effective_at".to_owned(), ts(i.grant_effective_at)),
        ("session_id".to_owned(), s(i.session.id.as_str())),
        ("session_url".to_owned(), s(&i.session.url)),
        ("session_expires_at".to_owned(), ts(i.session.expires_at)),
        (
            "session_amount".to_owned(),
            AttributeValue::N(i.session.amount_minor.to_string()),
        ),
        ("provider".to_owned(), s(&i.provider)),
        ("idempotency_key".to_owned(), s(&i.idempotency_key)),
        ("status".to_owned(), s(i.status.as_str())),
        ("created_at".to_owned(), ts(i.created_at)),
        ("updated_at".to_owned(), ts(i.updated_at)),
        ("paid_late".to_owned(), AttributeValue::Bool(i.paid_late)),
        ("version".to_owned(), AttributeValue::N(i.version.to_string())),
    ]);
    if i.status == InvoiceStatus::Open {
        // Sparse index: only open invoices are in the expiry sweep's partition.
        item.insert("GSI1PK".to_owned(), s(OPEN_INVOICES));
        item.insert(
            "GSI1SK".to_owned(),
            s(open_invoice_sk(&i.session.expires_at.to_storage(), t, i.id.as_str())),
        );
    }
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("subscription_id", i.subscription_id.clone().map(s));
    opt("credit_type_id", i.credit_type_id.clone().map(s));
    opt("grant_expires_at", i.grant_expires_at.map(ts));
    opt(
        "grant_reset_max_rollover",
        i.grant_reset_max_rollover.map(|v| n(v.value())),
    );
    opt(
        "grant_reset_min_rollover",
        i.grant_reset_min_rollover.map(|v| n(v.value())),
    );
    opt("success_url", i.success_url.clone().map(s));
    opt("cancel_url", i.cancel_url.clone().map(s));
    opt("paid_at", i.paid_at.map(ts));
    opt("grant_id", i.grant_id.as_ref().map(|g| s(g.as_str())));
    opt("canceled_at", i.canceled_at.map(ts));
    opt("cancel_reason", i.cancel_reason.clone().map(s));
    opt("failure_reason", i.failure_reason.clone().map(s));
    opt("notified_at", i.notified_at.map(ts));
    opt(
        "refunded_minor",
        (i.refunded_minor != 0).then(|| AttributeValue::N(i.refunded_minor.to_string())),
    );
    opt(
        "credits_reclaimed",
        (!i.credits_reclaimed.is_zero()).then(|| n(i.credits_reclaimed)),
    );
    opt("refunded_at", i.refunded_at.map(ts));
    if let Some(keys) = &i.session.checkout {
        item.insert("session_client_secret".to_owned(), s(&keys.client_secret));
        item.insert("session_publishable_key".to_owned(), s(&keys.publishable_key));
    }
    item
}

pub(crate) fn invoice_from(item: &Item) -> Result<Invoice, StoreError> {
    let r = Reader(item);
    let currency = Currency::parse(r.s("currency")?).map_err(corrupt("currency"))?;
    let whole = |k: &str| -> Result<i64, StoreError> {
        r.dec(k)
            .and_then(|d| i64::try_from(d).map_err(|_| StoreError::Corrupt(format!("{k} is not an integer"))))
    };
    Ok(Invoice {
        id: InvoiceId::parse(r.s("id")?).map_err(corrupt("invoice id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        entitlement_id: EntitlementId::parse(r.s("entitlement_id")?).map_err(corrupt("entitlement id"))?,
        customer_id: r.s("customer_id")?.to_owned(),
        subscription_id: r.opt_s("subscription_id").map(str::to_owned),
        credit_type_id: r.opt_s("credit_type_id").map(str::to_owned),
        grant_amount: CreditAmount::new(r.dec("grant_amount")?).map_err(corrupt("grant amount"))?,
        price: Price::new(r.dec("price")?, currency).map_err(corrupt("price"))?,
        grant_effective_at: r.ts("grant_effective_at")?,
        grant_expires_at: r.opt_ts("grant_expires_at")?,
        grant_reset_max_rollover: r
            .opt_dec("grant_reset_max_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        grant_reset_min_rollover: r
            .opt_dec("grant_reset_min_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        success_url: r.opt_s("success_url").map(str::to_owned),
        cancel_url: r.opt_s("cancel_url").map(str::to_owned),
        session: PaymentSession {
            id: SessionId::parse(r.s("session_id")?).map_err(corrupt("session id"))?,
            url: r.s("session_url")?.to_owned(),
            expires_at: r.ts("session_expires_at")?,
            amount_minor: whole("session_amount")?,
            checkout: match (r.opt_s("session_client_secret"), r.opt_s("session_publishable_key")) {
                (Some(client_secret), Some(publishable_key)) => Some(CheckoutKeys {
                    client_secret: client_secret.to_owned(),
                    publishable_key: publishable_key.to_owned(),
                }),
                _ => None,
            },
        },
        provider: r.s("provider")?.to_owned(),
        idempotency_key: r.s("idempotency_key")?.to_owned(),
        status: InvoiceStatus::parse(r.s("status")?).ok_or_else(|| StoreError::Corrupt("invoice status".to_owned()))?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        paid_at: r.opt_ts("paid_at")?,
        grant_id: r
            .opt_s("grant_id")
            .map(GrantId::parse)
            .transpose()
            .map_err(corrupt("grant id"))?,
        paid_late: r.bool("paid_late"),
        canceled_at: r.opt_ts("canceled_at")?,
        cancel_reason: r.opt_s("cancel_reason").map(str::to_owned),
        failure_reason: r.opt_s("failure_reason").map(str::to_owned),
        notified_at: r.opt_ts("notified_at")?,
        refunded_minor: match r.opt_dec("refunded_minor")? {
            Some(d) => {
                i64::try_from(d).map_err(|_| StoreError::Corrupt("refunded_minor is not an integer".to_owned()))?
            }
            None => 0,
        },
        credits_reclaimed: r.opt_dec("credits_reclaimed")?.unwrap_or_default(),
        refunded_at: r.opt_ts("refunded_at")?,
        version: u64::try_from(whole("version")?).map_err(corrupt("version"))?,
    })
}

pub(crate) fn session_item(i: &Invoice) -> Item {
    HashMap::from([
        (PK.to_owned(), s(session_pk(i.session.id.as_str()))),
        (SK.to_owned(), s(SESSION_SK)),
        ("type".to_owned(), s("payment_session")),
        ("tenant".to_owned(), s(i.tenant.as_str())),
        ("invoice_id".to_owned(), s(i.id.as_str())),
    ])
}

/// The conditional Put that replaces an invoice only at the version it was read at.
pub(crate) fn versioned_invoice_put(table: &str, invoice: &Invoice, expected_version: u64) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(invoice_item(invoice)))
        .condition_expression("version = :v")
        .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl PurchaseStore for DynamoStore {
    async fn insert_purchase(&self, invoice: &Invoice, claim: &Claim) -> Result<InsertOutcome, StoreError> {
        let pk = entitlement_pk(invoice.tenant.as_str(), invoice.entitlement_id.as_str());
        let objects = vec![
            put(&self.table, invoice_item(invoice), "attribute_not_exists(PK)")?,
            put(&self.table, session_item(invoice), "attribute_not_exists(PK)")?,
        ];
        self.insert_claimed(pk, Some(claim), objects, None).await
    }

    async fn get_invoice(&self, tenant: &TenantId, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.get(invoice_pk(tenant.as_str(), id.as_str()), INVOICE_SK)
            .await?
            .as_ref()
            .map(invoice_from)
            .transpose()
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<(TenantId, InvoiceId)>, StoreError> {
        let Some(item) = self.get(session_pk(id.as_str()), SESSION_SK).await? else {
            return Ok(None);
        };
        let r = Reader(&item);
        Ok(Some((
            TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
            InvoiceId::parse(r.s("invoice_id")?).map_err(corrupt("invoice id"))?,
        )))
    }

    async fn update_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        self.put_at_version(invoice_item(invoice), expected_version).await
    }

    async fn settle_invoice(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        grant: &Grant,
    ) -> Result<bool, StoreError> {
        let items = vec![
            TransactWriteItem::builder()
                .put(versioned_invoice_put(&self.table, invoice, expected_version)?)
                .build(),
            put(&self.table, grant_item(grant), "attribute_not_exists(PK)")?,
            message_put(&self.table, &webhook_messages::invoice_paid(invoice))?,
            message_put(&self.table, &webhook_messages::grant_created(grant))?,
        ];
        self.transact_versioned(items).await
    }

    async fn cancel_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        let items = vec![
            TransactWriteItem::builder()
                .put(versioned_invoice_put(&self.table, invoice, expected_version)?)
                .build(),
            message_put(&self.table, &webhook_messages::purchase_canceled(invoice))?,
        ];
        self.transact_versioned(items).await
    }

    async fn record_refund(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        reduction: &GrantReduction,
        ledger: Option<&RefundLedger>,
    ) -> Result<bool, StoreError> {
        let mut items = vec![
            TransactWriteItem::builder()
                .put(versioned_invoice_put(&self.table, invoice, expected_version)?)
                .build(),
            message_put(&self.table, &webhook_messages::grant_reduced(reduction))?,
        ];
        if let Some(l) = ledger {
            // As write_usage writes an event: the record (new id), the entitlement (active, log
            // unmoved, no live lease; counters unchanged: an adjustment is not usage), the grant at
            // the version read, and the log's items.
            let r = &l.record;
            items.push(put(&self.table, usage_item(r), "attribute_not_exists(PK)")?);
            items.push(counters_update(
                &self.table,
                r,
                CounterDelta::default(),
                true,
                l.log.as_ref(),
                Some(r.recorded_at),
            )?);
            for (g, read) in &l.grants {
                items.push(versioned_grant_put(&self.table, g, *read)?);
            }
            if let Some(log) = &l.log {
                items.extend(append_items(
                    &self.table,
                    &r.tenant,
                    &r.entitlement_id,
                    log,
                    r.rollover,
                )?);
            }
        }
        self.transact_versioned(items).await
    }

    async fn due_open_invoices(&self, now: Timestamp, limit: usize) -> Result<Vec<Invoice>, StoreError> {
        // Sort keys start with the session expiry; every key of an instant <= now sorts below
        // "<now>#~" (ids and tenants use characters below '~').
        let out = self
            .client()
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :hi")
            .expression_attribute_values(":pk", s(OPEN_INVOICES))
            .expression_attribute_values(":hi", s(format!("{}#~", now.to_storage())))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        out.items.unwrap_or_default().iter().map(invoice_from).collect()
    }
}
