//! Diagnostics as Kubernetes Events (`events.k8s.io/v1`) on the objects they concern.
//!
//! Each compile reports every current diagnostic, so a bad Ingress would otherwise produce
//! an Event per compile. [`DiagnosticEvents`] turns that into one Event per problem:
//!
//! - **Deduplicated**: a diagnostic (same object, code, key, value and message) that
//!   persists across compiles is one Event. While it persists, the Event's `series` (count
//!   and `lastObservedTime`) is refreshed at most once per [`EventSettings::series_interval`]
//!   (client-go refreshes series every 30 minutes), which also keeps the Event from expiring
//!   (the API server's event TTL, one hour by default, restarts on every write). A
//!   diagnostic that goes and comes back within the interval continues its series.
//! - **Rate limited**: every write takes a token from the object's bucket and from one
//!   bucket for all objects; what finds no token waits for the next flush.
//! - Diagnostics without an object (a file that could not be read) are skipped.
//!
//! Events are written here rather than through kube-runtime's `events::Recorder`, which
//! keys its series by object and reason alone: two different problems with the same code
//! on one Ingress (two bad annotations, both `invalid-value`) would become one Event that
//! keeps only the first one's note.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mse_model::{Diagnostic, Kind, ObjectKey, Severity, Snapshot};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{FIELD_MANAGER, chain};
use crate::Compiled;

/// The Events' `action`: what the gateway was doing when it found the problem.
pub const EVENT_ACTION: &str = "Compile";

/// Kubernetes caps `note` at 1 kB.
const NOTE_LIMIT: usize = 1024;
/// Kubernetes caps `reportingInstance` at 128 characters.
const INSTANCE_LIMIT: usize = 128;

/// Rates and intervals for [`DiagnosticEvents`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventSettings {
    /// The least time between two writes for one persisting diagnostic (its series).
    /// Default 30 minutes; keep it under the API server's event TTL (one hour).
    pub series_interval: Duration,
    /// Writes one object may make at once. Default 25.
    pub object_burst: u32,
    /// One more write for an object per this much time. Default one second.
    pub object_refill: Duration,
    /// Writes all objects together may make at once. Default 100.
    pub total_burst: u32,
    /// One more write for all objects together per this much time. Default 100 ms.
    pub total_refill: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            series_interval: Duration::from_secs(30 * 60),
            object_burst: 25,
            object_refill: Duration::from_secs(1),
            total_burst: 100,
            total_refill: Duration::from_millis(100),
        }
    }
}

/// What one [`DiagnosticEvents::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventsFlush {
    /// Events created.
    pub created: usize,
    /// Series updates written.
    pub updated: usize,
    /// Writes left for later by the rate limits.
    pub deferred: usize,
    /// Writes that failed (tried again on the next flush).
    pub failed: usize,
}

/// The Event written for one diagnostic, and its series.
#[derive(Debug)]
struct Tracked {
    /// Namespace and name of the Event, once created.
    event: Option<(String, String)>,
    /// Occurrences written so far (1 for a new Event).
    count: i32,
    last_write: Option<Instant>,
    last_seen: Instant,
    /// Whether the last observed compile had it.
    present: bool,
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn refill(&mut self, burst: u32, every: Duration, now: Instant) {
        let gained = if every.is_zero() {
            f64::from(burst)
        } else {
            now.saturating_duration_since(self.at).as_secs_f64() / every.as_secs_f64()
        };
        self.tokens = (self.tokens + gained).min(f64::from(burst));
        self.at = now;
    }
}

/// Turns each compile's diagnostics into deduplicated, rate-limited Events.
pub struct DiagnosticEvents {
    client: Client,
    instance: String,
    settings: EventSettings,
    tracked: HashMap<Diagnostic, Tracked>,
    buckets: HashMap<ObjectKey, Bucket>,
    total: Bucket,
}

// === impl DiagnosticEvents ===

impl DiagnosticEvents {
    /// Events reported by `identity` (the Events' `reportingInstance`) with the default
    /// settings; `reportingController` is [`mse_model::CONTROLLER_NAME`].
    pub fn new(client: Client, identity: &str) -> Self {
        Self::with_settings(client, identity, EventSettings::default())
    }

    /// As [`Self::new`], with other rates and intervals.
    pub fn with_settings(client: Client, identity: &str, settings: EventSettings) -> Self {
        let instance = truncate(identity, INSTANCE_LIMIT).to_owned();
        let total = Bucket::full(settings.total_burst, Instant::now());
        Self {
            client,
            instance,
            settings,
            tracked: HashMap::new(),
            buckets: HashMap::new(),
            total,
        }
    }

    /// Records the diagnostics of one compile as the current ones. Writes nothing.
    pub fn observe<'d>(&mut self, diagnostics: impl IntoIterator<Item = &'d Diagnostic>) {
        let now = Instant::now();
        for t in self.tracked.values_mut() {
            t.present = false;
        }
        for d in diagnostics {
            if d.origin.object.is_none() {
                continue;
            }
            let t = self.tracked.entry(d.clone()).or_insert(Tracked {
                event: None,
                count: 0,
                last_write: None,
                last_seen: now,
                present: true,
            });
            t.present = true;
            t.last_seen = now;
        }
        let interval = self.settings.series_interval;
        // A gone problem is forgotten at once if it never got an Event, else after the
        // series interval (so that its return continues the series).
        self.tracked.retain(|_, t| {
            t.present
                || (t.event.is_some() && now.saturating_duration_since(t.last_seen) < interval)
        });
    }

    /// Writes what the current diagnostics need: an Event for each new one, a series update
    /// for each that has persisted for the series interval since its last write, as far as
    /// the rate limits allow. `snapshot` supplies the objects' uids.
    pub async fn flush(&mut self, snapshot: &Snapshot) -> EventsFlush {
        let now = Instant::now();
        let mut out = EventsFlush::default();
        let due: Vec<Diagnostic> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.present && self.is_due(t, now))
            .map(|(d, _)| d.clone())
            .collect();
        for d in due {
            let Some(object) = d.origin.object.clone() else {
                continue;
            };
            if !self.take_token(&object, now) {
                out.deferred += 1;
                continue;
            }
            match self.write(&d, &object, snapshot).await {
                Ok(true) => out.created += 1,
                Ok(false) => out.updated += 1,
                Err(e) => {
                    out.failed += 1;
                    tracing::warn!(
                        object = %object,
                        code = d.code,
                        error = %chain(&e),
                        "could not write an Event"
                    );
                }
            }
        }
        let settings = &self.settings;
        self.buckets.retain(|_, b| {
            b.refill(settings.object_burst, settings.object_refill, now);
            b.tokens < f64::from(settings.object_burst)
        });
        out
    }

    /// [`Self::observe`], then [`Self::flush`].
    pub async fn report<'d>(
        &mut self,
        diagnostics: impl IntoIterator<Item = &'d Diagnostic>,
        snapshot: &Snapshot,
    ) -> EventsFlush {
        self.observe(diagnostics);
        self.flush(snapshot).await
    }

    /// Forgets every Event written, as when leadership passes to another replica: if this
    /// one leads again, it reports the diagnostics of that moment afresh.
    pub fn reset(&mut self) {
        self.tracked.clear();
    }

    /// Reports the diagnostics of every compile while `leader` says we lead, refreshing
    /// series and retrying deferred writes in between, until either channel closes.
    pub async fn run(
        mut self,
        mut compiled: watch::Receiver<Option<Compiled>>,
        mut leader: watch::Receiver<bool>,
    ) {
        loop {
            let leading = *leader.borrow_and_update();
            let current = compiled.borrow_and_update().clone();
            let mut wake = None;
            match current {
                Some(c) if leading => {
                    self.observe(c.diagnostics());
                    let flushed = self.flush(&c.snapshot).await;
                    wake = Some(self.next_wake(flushed));
                }
                _ => self.reset(),
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = compiled.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                () = sleep => {}
            }
        }
    }

    /// When the run loop should flush again without a new compile.
    fn next_wake(&self, flushed: EventsFlush) -> Instant {
        let now = Instant::now();
        if flushed.deferred > 0 || flushed.failed > 0 {
            let step = self
                .settings
                .object_refill
                .max(self.settings.total_refill)
                .max(Duration::from_millis(100));
            return now + step;
        }
        self.tracked
            .values()
            .filter(|t| t.present)
            .filter_map(|t| t.last_write)
            .map(|at| at + self.settings.series_interval)
            .min()
            .unwrap_or(now + self.settings.series_interval)
    }

    fn is_due(&self, t: &Tracked, now: Instant) -> bool {
        match (&t.event, t.last_write) {
            (Some(_), Some(at)) => {
                now.saturating_duration_since(at) >= self.settings.series_interval
            }
            _ => true,
        }
    }

    /// Takes a token from the object's bucket and the total bucket, or from neither.
    fn take_token(&mut self, object: &ObjectKey, now: Instant) -> bool {
        let s = &self.settings;
        self.total.refill(s.total_burst, s.total_refill, now);
        let bucket = self
            .buckets
            .entry(object.clone())
            .or_insert_with(|| Bucket::full(s.object_burst, now));
        bucket.refill(s.object_burst, s.object_refill, now);
        if bucket.tokens < 1.0 || self.total.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        self.total.tokens -= 1.0;
        true
    }

    /// Creates the diagnostic's Event, or updates its series. `Ok(true)` when created.
    async fn write(
        &mut self,
        d: &Diagnostic,
        object: &ObjectKey,
        snapshot: &Snapshot,
    ) -> Result<bool, kube::Error> {
        let now = Instant::now();
        let existing = self.tracked.get(d).and_then(|t| t.event.clone());
        if let Some((namespace, name)) = existing {
            let count = self.tracked.get(d).map_or(1, |t| t.count) + 1;
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({
                "series": { "count": count, "lastObservedTime": MicroTime(Timestamp::now()) }
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match api.patch(&name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    if let Some(t) = self.tracked.get_mut(d) {
                        t.count = count;
                        t.last_write = Some(now);
                    }
                    return Ok(false);
                }
                // Expired on the server: start a new Event.
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let Some(event) = self.new_event(d, object, snapshot) else {
            // A kind Events cannot name: forget it rather than retry forever.
            self.tracked.remove(d);
            return Ok(false);
        };
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        api.create(&params, &event).await?;
        if let Some(t) = self.tracked.get_mut(d) {
            t.event = Some((namespace, name));
            t.count = 1;
            t.last_write = Some(now);
        }
        Ok(true)
    }

    /// The Event for a diagnostic; `None` for an object kind with no known API version.
    fn new_event(&self, d: &Diagnostic, object: &ObjectKey, snapshot: &Snapshot) -> Option<Event> {
        let api_version = api_version(object.kind)?;
        let now = Timestamp::now();
        let namespace = if object.kind.is_namespaced() && !object.namespace.is_empty() {
            object.namespace.to_string()
        } else {
            // Where client-go and kube-runtime put Events on cluster-scoped objects.
            "default".to_owned()
        };
        // `name.<hex nanoseconds>`, client-go's scheme, within the 253-character limit.
        let name = format!("{}.{:x}", truncate(&object.name, 200), now.as_nanosecond());
        Some(Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(EVENT_ACTION.to_owned()),
            reason: Some(d.code.to_owned()),
            note: Some(note(d)),
            type_: Some(event_type(d.severity).to_owned()),
            regarding: Some(ObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: Some(object.kind.as_str().to_owned()),
                name: Some(object.name.to_string()),
                namespace: object
                    .kind
                    .is_namespaced()
                    .then(|| object.namespace.to_string()),
                uid: uid_of(snapshot, object),
                ..ObjectReference::default()
            }),
            reporting_controller: Some(mse_model::CONTROLLER_NAME.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        })
    }
}

/// `Warning` for errors and warnings, `Normal` for infos.
pub fn event_type(severity: Severity) -> &'static str {
    match severity {
        Severity::Error | Severity::Warning => "Warning",
        Severity::Info => "Normal",
    }
}

/// The Event's note: the key, the message and the value, within Kubernetes' 1 kB.
fn note(d: &Diagnostic) -> String {
    let mut s = String::new();
    if let Some(key) = &d.origin.key {
        s.push_str(key);
        s.push_str(": ");
    }
    s.push_str(&d.message);
    if let Some(v) = &d.value {
        s.push_str(&format!(" (value {v:?})"));
    }
    truncate(&s, NOTE_LIMIT).to_owned()
}

/// At most `limit` bytes, cut at a character boundary.
fn truncate(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn api_version(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Ingress | Kind::IngressClass => "networking.k8s.io/v1",
        Kind::Service | Kind::Endpoints | Kind::Secret | Kind::ConfigMap | Kind::Pod => "v1",
        Kind::EndpointSlice => "discovery.k8s.io/v1",
        Kind::MseIngressConfig => "mse.alibabacloud.com/v1alpha1",
        _ => return None,
    })
}

/// The object's uid in the snapshot, so that `kubectl describe` finds the Event.
fn uid_of(snapshot: &Snapshot, key: &ObjectKey) -> Option<String> {
    fn find<T>(
        list: &[mse_model::Sourced<T>],
        key: &ObjectKey,
        meta: impl Fn(&T) -> &ObjectMeta,
    ) -> Option<String> {
        list.iter()
            .map(|s| meta(&s.object))
            .find(|m| ObjectKey::of(key.kind, m) == *key)
            .and_then(|m| m.uid.clone())
    }
    match key.kind {
        Kind::Ingress => find(&snapshot.ingresses, key, |o| &o.metadata),
        Kind::IngressClass => find(&snapshot.ingress_classes, key, |o| &o.metadata),
        Kind::Service => find(&snapshot.services, key, |o| &o.metadata),
        Kind::EndpointSlice => find(&snapshot.endpoint_slices, key, |o| &o.metadata),
        Kind::Endpoints => find(&snapshot.endpoints, key, |o| &o.metadata),
        Kind::Secret => find(&snapshot.secrets, key, |o| &o.metadata),
        Kind::ConfigMap => find(&snapshot.config_maps, key, |o| &o.metadata),
        Kind::MseIngressConfig => find(&snapshot.mse_configs, key, |o| &o.metadata),
        Kind::Pod => find(&snapshot.pods, key, |o| &o.metadata),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_name_the_key_and_value_and_fit_the_limit() {
        let d = Diagnostic::error("invalid-value", "expected seconds")
            .key("nginx.ingress.kubernetes.io/proxy-read-timeout")
            .value("ten");
        assert_eq!(
            note(&d),
            "nginx.ingress.kubernetes.io/proxy-read-timeout: expected seconds (value \"ten\")"
        );
        let long = Diagnostic::warning("x", "é".repeat(NOTE_LIMIT));
        let n = note(&long);
        assert!(n.len() <= NOTE_LIMIT && n.len() >= NOTE_LIMIT - 1);
    }

    #[test]
    fn buckets_refill_up_to_their_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::full(2, t0);
        b.tokens = 0.0;
        b.refill(2, Duration::from_secs(1), t0 + Duration::from_millis(1500));
        assert!((b.tokens - 1.5).abs() < 1e-9);
        b.refill(2, Duration::from_secs(1), t0 + Duration::from_secs(60));
        assert!((b.tokens - 2.0).abs() < 1e-9);
    }

    #[test]
    fn event_types_follow_severity() {
        assert_eq!(event_type(Severity::Error), "Warning");
        assert_eq!(event_type(Severity::Warning), "Warning");
        assert_eq!(event_type(Severity::Info), "Normal");
    }
}
