//! What every file of this crate uses: the SDK's and the domain's types, and this crate's
//! machinery and item conversions.
pub(crate) use crate::attributes::*;
pub(crate) use crate::client::*;
pub(crate) use crate::entitlements::*;
pub(crate) use crate::grants::*;
pub(crate) use crate::ledger::*;
pub(crate) use crate::messages::message_put;
pub(crate) use crate::schema::*;
pub(crate) use crate::usage::*;
pub(crate) use async_trait::async_trait;
pub(crate) use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
pub(crate) use aws_sdk_dynamodb::operation::put_item::PutItemError;
pub(crate) use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
pub(crate) use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
pub(crate) use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
pub(crate) use aws_sdk_dynamodb::Client;
pub(crate) use grants_domain::capacity::{CapacityGrant, ExactPrice};
pub(crate) use grants_domain::credits::{CreditType, GrantEdit};
pub(crate) use grants_domain::kernel::Claim;
pub(crate) use grants_domain::ledger::{Deduction, LogAppend, LogHead, UsageStatus};
pub(crate) use grants_domain::model::{ApiKeyRecord, Entitlement, EntitlementStatus, Grant, GrantDetails, Role};
pub(crate) use grants_domain::money::{Currency, Price};
pub(crate) use grants_domain::payments::{CheckoutKeys, PaymentSession};
pub(crate) use grants_domain::periods::Reset;
pub(crate) use grants_domain::plans::{
    CreditPlan, DurationUnit, Expiration, ExpirationType, Period, PlanScope, PlanStatus, Recurrence,
};
pub(crate) use grants_domain::ports::*;
pub(crate) use grants_domain::purchases::{GrantReduction, Invoice, InvoiceStatus, RefundLedger};
pub(crate) use grants_domain::tenants::TenantSettings;
pub(crate) use grants_domain::usage::{CounterDelta, UsageRecord};
pub(crate) use grants_domain::webhook_messages;
pub(crate) use grants_domain::{
    CapacityGrantId, CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, Priority, SessionId, TenantId,
    Timestamp,
};
pub(crate) use rust_decimal::Decimal;
pub(crate) use std::collections::{BTreeMap, HashMap};
pub(crate) use std::str::FromStr;
pub(crate) use std::time::Duration;
