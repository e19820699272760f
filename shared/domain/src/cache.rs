//! A small per-process cache with a time to live: what a warm Lambda instance remembers between
//! invocations so that it spends no DynamoDB round trip on data that rarely changes.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

/// Entries kept before the cache starts over (bounds memory on an instance that sees many keys).
const MAX_ENTRIES: usize = 10_000;

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, MAX_ENTRIES)
    }

    /// A cache that starts over once it holds `capacity` entries.
    pub(crate) fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: String, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            // Drop what has expired first; start over only when everything is still fresh.
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn forget(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}
