//! [`LedgerStore`] on DynamoDB: the entitlement's log, checkpoints, usage days and pending holds,
//! all in the entitlement's partition (see [`crate::schema`]), and what a usage transaction adds to
//! write them.
use crate::prelude::*;
use grants_domain::balances::{LedgerStore, Present};
use grants_domain::ledger::{Bound, Checkpoint, Day, LogAppend, LogEntry, Start, Totals, GRANTS_PER_DAY_ITEM};

/// One log entry as a log item stores it: `[seq, occurred (storage form), overage, [[grant,
/// amount], ...]]`, numbers as decimal strings, exact.
type StoredEntry = (u64, String, String, Vec<(String, String)>);

/// A log item (or a late entry's copy): the entries of one write, as one JSON string (compact: a window of entries is a
/// few items, read and parsed whole).
fn log_item_attrs(group: &[(LogEntry, bool)]) -> Result<Vec<(String, AttributeValue)>, StoreError> {
    let entries: Vec<StoredEntry> = group
        .iter()
        .map(|(e, _)| {
            (
                e.seq,
                e.occurred_at.to_storage(),
                e.overage.to_string(),
                e.drawn
                    .iter()
                    .map(|d| (d.grant_id.as_str().to_owned(), d.amount.to_string()))
                    .collect(),
            )
        })
        .collect();
    let json = serde_json::to_string(&entries).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(vec![("type".to_owned(), s("log")), ("entries".to_owned(), s(json))])
}

/// The entries of log items (in order).
fn entries_of(items: &[Item]) -> Result<Vec<LogEntry>, StoreError> {
    let mut out = Vec::new();
    for item in items {
        let stored: Vec<StoredEntry> = serde_json::from_str(Reader(item).s("entries")?)
            .map_err(|e| StoreError::Corrupt(format!("log entries: {e}")))?;
        for (seq, occurred, overage, drawn) in stored {
            let dec = |v: &str| Decimal::from_str(v).map_err(|_| StoreError::Corrupt("log amount".to_owned()));
            out.push(LogEntry {
                seq,
                occurred_at: Timestamp::parse(&occurred).map_err(corrupt("log entry instant"))?,
                overage: dec(&overage)?,
                drawn: drawn
                    .iter()
                    .map(|(g, a)| {
                        Ok(Deduction {
                            grant_id: GrantId::parse(g).map_err(corrupt("grant id"))?,
                            amount: dec(a)?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?,
            });
        }
    }
    Ok(out)
}

fn checkpoint_from(item: &Item) -> Result<Checkpoint, StoreError> {
    let r = Reader(item);
    let drawn = item
        .get("drawn")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| StoreError::Corrupt("checkpoint totals".to_owned()))?
        .iter()
        .map(|(g, v)| {
            let amount = v
                .as_n()
                .ok()
                .and_then(|x| Decimal::from_str(x).ok())
                .ok_or_else(|| StoreError::Corrupt("checkpoint amount".to_owned()))?;
            Ok((GrantId::parse(g).map_err(corrupt("grant id"))?, amount))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Checkpoint {
        seq: r.version("seq")?,
        previous_seq: r.version("previous_seq")?,
        at: r.ts("at")?,
        totals: Totals {
            drawn,
            overage: r.dec("overage")?,
        },
    })
}

/// Adds moving the entitlement's log head to `log.head` to an update of the entitlement: its SET
/// clauses (pushed onto `set`), their values, and the condition that the log is still at
/// `log.read_seq` (appended to `condition`). Nothing without a log append.
pub(crate) fn with_log_head(
    mut update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    set: &mut Vec<String>,
    condition: &mut String,
    log: Option<&LogAppend>,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let Some(log) = log else { return update };
    let h = &log.head;
    let mut values = vec![
        (LOG_SEQ, ":log_seq", AttributeValue::N(h.seq.to_string())),
        (
            LOG_CHECKPOINT_SEQ,
            ":log_cs",
            AttributeValue::N(h.checkpoint_seq.to_string()),
        ),
        (LOG_OVERAGE, ":log_o", n(h.overage_total)),
        (LOG_LATE, ":log_l", AttributeValue::N(h.late_entries.to_string())),
    ];
    if let Some(at) = h.checkpoint_at {
        values.push((LOG_CHECKPOINT_AT, ":log_ca", ts(at)));
    }
    if let Some(at) = h.latest_occurred {
        values.push((LOG_LATEST, ":log_lo", ts(at)));
    }
    for (attr, placeholder, value) in values {
        set.push(format!("{attr} = {placeholder}"));
        update = update.expression_attribute_values(placeholder, value);
    }
    condition.push_str(" AND log_seq = :read_seq");
    update.expression_attribute_values(":read_seq", AttributeValue::N(log.read_seq.to_string()))
}

/// The items a log append adds to the transaction of the write it records (the entitlement's own
/// update is [`with_log_head`]): each entry (and its late copy), the checkpoint, and one update
/// per day of the entries' usage. `rollover`: the entries are a period reset's adjustments.
pub(crate) fn append_items(
    table: &str,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    log: &LogAppend,
    rollover: bool,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let pk = entitlement_pk(tenant.as_str(), entitlement.as_str());
    let keyed = |sk: String, attrs: Vec<(String, AttributeValue)>| -> Item {
        let mut item: Item = attrs.into_iter().collect();
        item.insert(PK.to_owned(), s(pk.clone()));
        item.insert(SK.to_owned(), s(sk));
        item
    };
    let mut items = Vec::new();
    // Per day, per grant: what the entries drew.
    let mut days: BTreeMap<String, BTreeMap<&str, Decimal>> = BTreeMap::new();
    for group in log.groups() {
        if let Some((first, _)) = group.first() {
            let item = keyed(log_sk(first.seq), log_item_attrs(group)?);
            items.push(put(table, item, "attribute_not_exists(PK)")?);
        }
    }
    for (e, late) in &log.entries {
        if *late {
            let sk = late_sk(&e.occurred_at.to_storage(), e.seq);
            let copy = keyed(sk, log_item_attrs(std::slice::from_ref(&(e.clone(), true)))?);
            items.push(put(table, copy, "attribute_not_exists(PK)")?);
        }
        if !e.drawn.is_empty() {
            let day = days.entry(day_sk(&e.occurred_at.to_storage())).or_default();
            for d in &e.drawn {
                *day.entry(d.grant_id.as_str()).or_default() += d.amount;
            }
        }
    }
    if let Some(c) = &log.checkpoint {
        let drawn: HashMap<String, AttributeValue> = c
            .totals
            .drawn
            .iter()
            .map(|(g, d)| (g.as_str().to_owned(), n(*d)))
            .collect();
        let attrs = vec![
            ("type".to_owned(), s("checkpoint")),
            ("seq".to_owned(), AttributeValue::N(c.seq.to_string())),
            ("previous_seq".to_owned(), AttributeValue::N(c.previous_seq.to_string())),
            ("at".to_owned(), ts(c.at)),
            ("drawn".to_owned(), AttributeValue::M(drawn)),
            ("overage".to_owned(), n(c.totals.overage)),
        ];
        let sk = checkpoint_sk(&c.at.to_storage(), c.seq);
        items.push(put(table, keyed(sk, attrs), "attribute_not_exists(PK)")?);
    }
    for (sk, sums) in days {
        let sums: Vec<(&str, Decimal)> = sums.into_iter().collect();
        for (part, chunk) in sums.chunks(GRANTS_PER_DAY_ITEM).enumerate() {
            let key = if part == 0 { sk.clone() } else { format!("{sk}#{part}") };
            items.push(day_update(table, &pk, key, chunk, rollover)?);
        }
    }
    Ok(items)
}

/// Adds one day's deductions to its item: `u_<grant>` for usage, `r_<grant>` for a rollover.
fn day_update(
    table: &str,
    pk: &str,
    sk: String,
    sums: &[(&str, Decimal)],
    rollover: bool,
) -> Result<TransactWriteItem, StoreError> {
    let prefix = if rollover { "r_" } else { "u_" };
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(pk))
        .key(SK, s(sk))
        .expression_attribute_names("#type", "type")
        .expression_attribute_values(":day", s("day"));
    let mut adds = Vec::new();
    for (i, (g, amount)) in sums.iter().enumerate() {
        adds.push(format!("#g{i} :a{i}"));
        update = update
            .expression_attribute_names(format!("#g{i}"), format!("{prefix}{g}"))
            .expression_attribute_values(format!(":a{i}"), n(*amount));
    }
    let update = update
        .update_expression(format!("SET #type = :day ADD {}", adds.join(", ")))
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn day_from(item: &Item) -> Result<Day, StoreError> {
    let r = Reader(item);
    let sk = r.s(SK)?.trim_start_matches(DAY_SK_PREFIX);
    let date = sk.get(..10).unwrap_or(sk);
    let at = Timestamp::parse(&format!("{date}T00:00:00Z")).map_err(corrupt("usage day"))?;
    let mut day = Day::of(at);
    for (k, v) in item {
        let (sums, grant) = if let Some(g) = k.strip_prefix("u_") {
            (&mut day.usage, g)
        } else if let Some(g) = k.strip_prefix("r_") {
            (&mut day.rollover, g)
        } else {
            continue;
        };
        let amount = v
            .as_n()
            .ok()
            .and_then(|x| Decimal::from_str(x).ok())
            .ok_or_else(|| StoreError::Corrupt("usage day amount".to_owned()))?;
        sums.insert(GrantId::parse(grant).map_err(corrupt("grant id"))?, amount);
    }
    Ok(day)
}

/// A pending record's hold: the record's copy under `H#`, while it is pending.
pub(crate) fn hold_put(table: &str, record: &UsageRecord) -> Result<TransactWriteItem, StoreError> {
    let mut item = usage_item(record);
    item.insert(SK.to_owned(), s(hold_sk(&record.event_id)));
    item.insert("type".to_owned(), s("hold"));
    put(table, item, "attribute_not_exists(PK)")
}

/// Deletes a settled record's hold (none, for a record written before holds existed).
pub(crate) fn hold_delete(table: &str, record: &UsageRecord) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .key(
            PK,
            s(entitlement_pk(record.tenant.as_str(), record.entitlement_id.as_str())),
        )
        .key(SK, s(hold_sk(&record.event_id)))
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

impl DynamoStore {
    /// One strongly consistent Query of an entitlement's partition between two sort keys.
    async fn range(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        newest_first: bool,
        limit: Option<i32>,
    ) -> Result<Vec<Item>, StoreError> {
        let q = self
            .client()
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(!newest_first);
        match limit {
            Some(l) => Ok(q.limit(l).send().await.map_err(unavailable)?.items.unwrap_or_default()),
            None => {
                self.query_all(
                    None,
                    "PK = :pk AND SK BETWEEN :lo AND :hi",
                    &[],
                    vec![(":pk", s(pk)), (":lo", s(lo)), (":hi", s(hi))],
                )
                .await
            }
        }
    }
}

#[async_trait]
impl LedgerStore for DynamoStore {
    async fn load_present(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Present>, StoreError> {
        let pk = entitlement_pk(tenant.as_str(), id.as_str());
        let items = self.range(&pk, ENTITLEMENT_SK, HOLD_SK_MAX, false, None).await?;
        Ok(present_from(&items)?.map(|(present, _)| present))
    }

    async fn load_present_with_days(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Present, Vec<Day>)>, StoreError> {
        // `D#...` < `E` < `G#...` < `H#...`: the days, the entitlement, its grants and its holds
        // are one range of the partition.
        let pk = entitlement_pk(tenant.as_str(), id.as_str());
        let items = self.range(&pk, DAY_SK_PREFIX, HOLD_SK_MAX, false, None).await?;
        present_from(&items)
    }

    async fn checkpoint_after(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        bound: Bound,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let pk = entitlement_pk(tenant.as_str(), id.as_str());
        let lo = match bound {
            Bound::Through(t) => checkpoint_sk(&t.to_storage(), u64::MAX),
            Bound::Before(t) => checkpoint_sk(&t.to_storage(), 0),
        };
        self.range(&pk, &lo, &checkpoint_sk("~", 0), false, Some(1))
            .await?
            .first()
            .map(checkpoint_from)
            .transpose()
    }

    async fn read_log(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        head: &LogHead,
        bound: Bound,
        after: Option<Checkpoint>,
    ) -> Result<(Start, Vec<LogEntry>), StoreError> {
        let pk = entitlement_pk(tenant.as_str(), id.as_str());
        let written =
            |entries: Vec<LogEntry>| -> Vec<LogEntry> { entries.into_iter().filter(|e| e.seq <= head.seq).collect() };
        let entries = |items: Vec<Item>| -> Result<Vec<LogEntry>, StoreError> { Ok(written(entries_of(&items)?)) };
        // The head says whether the last checkpoint was made within the bound (then the read is
        // that checkpoint and the tail after it), or not (then it is the first one made after it).
        let last_within = head.checkpoint_at.is_none_or(|at| match bound {
            Bound::Through(t) => at <= t,
            Bound::Before(t) => at < t,
        });
        if last_within {
            let last = async {
                match head.checkpoint_at {
                    Some(at) if head.checkpoint_seq > 0 => self
                        .get(pk.clone(), &checkpoint_sk(&at.to_storage(), head.checkpoint_seq))
                        .await?
                        .as_ref()
                        .map(checkpoint_from)
                        .transpose()?
                        .ok_or_else(|| StoreError::Corrupt("the last checkpoint is missing".to_owned())),
                    _ => Ok(Checkpoint::origin()),
                }
            };
            let tail = async {
                if head.seq > head.checkpoint_seq {
                    let (from, to) = (log_sk(head.checkpoint_seq + 1), log_sk(head.seq));
                    self.range(&pk, &from, &to, false, None).await
                } else {
                    Ok(Vec::new())
                }
            };
            let (last, tail) = futures::try_join!(last, tail)?;
            return Ok((Start::Last(last), entries(tail)?));
        }
        // The head's last checkpoint is after the bound, so the first one after the bound is at
        // or before that one: what was found beside the entitlement is within the head.
        let checkpoint = match after.filter(|c| c.seq <= head.checkpoint_seq) {
            Some(c) => c,
            None => self
                .checkpoint_after(tenant, id, bound)
                .await?
                .ok_or_else(|| StoreError::Corrupt("no checkpoint after the last one's instant".to_owned()))?,
        };
        let (from, to) = (log_sk(checkpoint.previous_seq + 1), log_sk(checkpoint.seq));
        let late_hi = match bound {
            Bound::Through(t) => late_sk(&t.to_storage(), u64::MAX),
            Bound::Before(t) => late_sk(&t.to_storage(), 0),
        };
        let late = async {
            if head.late_entries > 0 {
                self.range(&pk, LATE_SK_PREFIX, &late_hi, false, None).await
            } else {
                Ok(Vec::new())
            }
        };
        let (window, late) = futures::try_join!(self.range(&pk, &from, &to, false, None), late)?;
        let late: Vec<LogEntry> = entries(late)?
            .into_iter()
            .filter(|e| e.seq > checkpoint.seq && bound.admits(e.occurred_at))
            .collect();
        Ok((
            Start::After {
                checkpoint,
                window: entries(window)?,
            },
            late,
        ))
    }
}

/// The ledger now (and the usage days) from the items of one read of the partition.
fn present_from(items: &[Item]) -> Result<Option<(Present, Vec<Day>)>, StoreError> {
    let mut entitlement = None;
    let mut grants = Vec::new();
    let mut holds = Vec::new();
    let mut days: Vec<Day> = Vec::new();
    for item in items {
        match Reader(item).opt_s("type") {
            Some("entitlement") => entitlement = Some(entitlement_from(item)?),
            Some("grant") => grants.push(grant_from(item)?),
            Some("hold") => holds.push(usage_from(item)?),
            Some("day") => {
                // The parts of one day follow each other in key order.
                let day = day_from(item)?;
                match days.last_mut() {
                    Some(last) if last.day == day.day => last.merge(day),
                    _ => days.push(day),
                }
            }
            _ => {}
        }
    }
    Ok(entitlement.map(|entitlement| {
        (
            Present {
                entitlement,
                grants,
                holds,
            },
            days,
        )
    }))
}
