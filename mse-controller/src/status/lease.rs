//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! kube-runtime 5 has no lease helper, so this is the small loop client-go's
//! `leaderelection` package runs, with the same rules:
//!
//! - **Acquire**: a missing Lease is created with us as holder. A Lease held by someone
//!   else is taken over once its record (holder, `renewTime`, `leaseTransitions`) has not
//!   changed for `leaseDurationSeconds` as measured on *our* monotonic clock since we first
//!   saw that record. The Lease's `renewTime` is a change marker, never compared with our
//!   wall clock, so clock skew between replicas cannot hand the lease to two of them. A
//!   Lease without a holder (released) is taken at once.
//! - **Write**: every write is a `replace` carrying the `resourceVersion` we read. When two
//!   replicas race for the same Lease the API server accepts one and answers the other 409
//!   Conflict: the loser stays a follower.
//! - **Renew**: the leader renews every retry period. It stops leading when no renewal has
//!   succeeded for the renew deadline (shorter than the lease duration, so it steps down
//!   before anyone else may take over), or as soon as it reads another holder.
//! - **Release**: on shutdown the leader stops leading first, then writes the Lease with no
//!   holder, so that another replica takes over at once instead of after the lease duration.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ControllerError;

/// The Lease and the timings of one replica's candidacy.
///
/// Defaults are client-go's: lease 15 s, renew deadline 10 s, retry every 2 s.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name (`--election-id`).
    pub name: String,
    /// This replica's identity, unique per process (see [`super::instance_identity`]).
    pub identity: String,
    /// How long a holder that stopped renewing keeps the Lease (`leaseDurationSeconds`, in
    /// whole seconds, at least one).
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal. Shorter than
    /// `lease_duration`.
    pub renew_deadline: Duration,
    /// How often every replica reads the Lease, and the leader renews it. Shorter than
    /// `renew_deadline`.
    pub retry_period: Duration,
}

// === impl LeaseSettings ===

impl LeaseSettings {
    /// Settings for `namespace/name` with the default timings.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks that the timings can work: `retry_period < renew_deadline < lease_duration`,
    /// and a lease of at least one second, in whole seconds.
    pub fn validate(&self) -> Result<(), ControllerError> {
        let invalid = |setting, value: Duration, reason: &str| ControllerError::InvalidSetting {
            setting,
            value: format!("{value:?}"),
            reason: reason.to_owned(),
        };
        if self.lease_duration < Duration::from_secs(1) || self.lease_duration.subsec_nanos() != 0 {
            return Err(invalid(
                "lease duration",
                self.lease_duration,
                "a Lease counts whole seconds; give at least one",
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(invalid(
                "renew deadline",
                self.renew_deadline,
                "must be shorter than the lease duration, so that a leader steps down before others may take over",
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(invalid(
                "retry period",
                self.retry_period,
                "must be positive and shorter than the renew deadline",
            ));
        }
        if self.identity.is_empty() {
            return Err(ControllerError::InvalidSetting {
                setting: "identity",
                value: String::new(),
                reason: "an empty holder identity means a released Lease".to_owned(),
            });
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// What identifies one version of a Lease's record: a change in any part restarts the
/// expiry count.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    acquire_time: Option<MicroTime>,
    transitions: Option<i32>,
    duration: Option<i32>,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew_time: spec.renew_time,
            acquire_time: spec.acquire_time,
            transitions: spec.lease_transitions,
            duration: spec.lease_duration_seconds,
        }
    }
}

/// One replica's candidacy for a Lease. Drive it with [`LeaderElector::spawn`], or one
/// round at a time with [`LeaderElector::try_acquire_or_renew`].
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The record last read or written, and when we first saw it.
    observed: Option<(Record, Instant)>,
    /// The Lease as we last wrote it, while we hold it (for renewals and release).
    held: Option<Lease>,
    /// When the last successful write of ours started: we lead until the renew deadline
    /// after it.
    renewed_at: Option<Instant>,
}

// === impl LeaderElector ===

impl LeaderElector {
    /// A candidate for the Lease in `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Result<Self, ControllerError> {
        settings.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            held: None,
            renewed_at: None,
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Whether we lead now: our last write succeeded less than the renew deadline ago.
    pub fn is_leader(&self) -> bool {
        self.renewed_at
            .is_some_and(|at| at.elapsed() < self.settings.renew_deadline)
    }

    /// One round: reads the Lease, then creates it, renews it or takes it over when the
    /// rules allow. Returns whether we lead afterwards. An error (the API server unreachable,
    /// a 409 from a lost race) leaves leadership to the renew deadline.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, ControllerError> {
        let started = Instant::now();
        let current = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.api_error("reading the lease", e))?;
        let Some(current) = current else {
            self.held = None;
            let lease = self.fresh_lease(None);
            let created = self.api.create(&PostParams::default(), &lease).await;
            return self.after_write(created, started, "creating the lease");
        };
        let record = Record::of(&current);
        let now = Instant::now();
        match &self.observed {
            Some((seen, _)) if *seen == record => {}
            _ => self.observed = Some((record.clone(), now)),
        }
        let mine = record.holder.as_deref() == Some(self.settings.identity.as_str());
        if !mine {
            let held = self.held.take().is_some();
            let leading = self.renewed_at.take().is_some();
            if held || leading {
                tracing::info!(
                    lease = %self.settings.name,
                    holder = record.holder.as_deref().unwrap_or(""),
                    "another replica holds the lease; no longer the leader"
                );
            }
        }
        let next = if mine {
            self.renewal(current)
        } else if self.expired(&record, now) {
            self.takeover(current)
        } else {
            return Ok(false);
        };
        let written = self
            .api
            .replace(&self.settings.name, &PostParams::default(), &next)
            .await;
        let action = if mine {
            "renewing the lease"
        } else {
            "taking over the lease"
        };
        self.after_write(written, started, action)
    }

    /// Gives the Lease up if we hold it: we stop leading at once, then the Lease is written
    /// without a holder so that another replica takes over without waiting for it to expire.
    pub async fn release(&mut self) -> Result<(), ControllerError> {
        self.renewed_at = None;
        let Some(mut lease) = self.held.take() else {
            return Ok(());
        };
        let now = MicroTime(Timestamp::now());
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.settings.name, "leader election lease released");
                Ok(())
            }
            // Someone else wrote it since: it is not ours to release.
            Err(kube::Error::Api(s)) if s.code == 409 || s.is_not_found() => Ok(()),
            Err(e) => Err(self.api_error("releasing the lease", e)),
        }
    }

    /// Runs the election until the handle is released or dropped, publishing leadership on
    /// [`LeaderHandle::subscribe`].
    pub fn spawn(self) -> LeaderHandle {
        let leading = Arc::new(watch::Sender::new(false));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(self.run(Arc::clone(&leading), stop_rx));
        LeaderHandle {
            leading,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    async fn run(mut self, leading: Arc<watch::Sender<bool>>, mut stop: oneshot::Receiver<()>) {
        let period = self.settings.retry_period;
        loop {
            // A leader's round may not outlast its renew deadline: it must step down on
            // time even when the API server does not answer.
            let deadline = self.settings.renew_deadline;
            let round_timeout = match self.renewed_at {
                Some(at) if self.is_leader() => {
                    (at + deadline).saturating_duration_since(Instant::now())
                }
                _ => deadline,
            };
            let round = tokio::time::timeout(round_timeout, self.try_acquire_or_renew());
            let outcome = tokio::select! {
                outcome = round => outcome,
                _ = &mut stop => break,
            };
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(
                    error = %super::chain(&e),
                    "leader election round failed"
                ),
                Err(_) => tracing::warn!(
                    lease = %self.settings.name,
                    timeout = ?round_timeout,
                    "leader election round timed out"
                ),
            }
            let now_leading = self.is_leader();
            leading.send_if_modified(|was| {
                if *was == now_leading {
                    return false;
                }
                tracing::info!(
                    lease = %self.settings.name,
                    identity = %self.settings.identity,
                    leading = now_leading,
                    "leadership changed"
                );
                *was = now_leading;
                true
            });
            // While leading, wake no later than the renew deadline to step down on time.
            let wait = match self.renewed_at {
                Some(at) if now_leading => period.min(
                    (at + self.settings.renew_deadline).saturating_duration_since(Instant::now()),
                ),
                _ => period,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = &mut stop => break,
            }
        }
        leading.send_replace(false);
        if let Err(e) = self.release().await {
            tracing::warn!(error = %super::chain(&e), "could not release the lease");
        }
    }

    /// Whether a record held by someone else may be taken over.
    fn expired(&self, record: &Record, now: Instant) -> bool {
        if record.holder.is_none() {
            return true;
        }
        let Some((_, since)) = &self.observed else {
            return false;
        };
        let seconds = record
            .duration
            .filter(|d| *d > 0)
            .unwrap_or(self.settings.lease_seconds());
        let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        now.saturating_duration_since(*since) >= duration
    }

    fn fresh_lease(&self, metadata: Option<ObjectMeta>) -> Lease {
        let now = MicroTime(Timestamp::now());
        Lease {
            metadata: metadata.unwrap_or_else(|| ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                ..ObjectMeta::default()
            }),
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(self.settings.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Our Lease with a new `renewTime`; the read `resourceVersion` guards the write.
    fn renewal(&self, mut current: Lease) -> Lease {
        let spec = current.spec.get_or_insert_with(LeaseSpec::default);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(self.settings.lease_seconds());
        current
    }

    /// The Lease with us as holder: a new `acquireTime`, one more transition.
    fn takeover(&self, current: Lease) -> Lease {
        let transitions = current
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let mut next = self.fresh_lease(Some(current.metadata));
        if let Some(spec) = next.spec.as_mut() {
            spec.lease_transitions = Some(transitions.saturating_add(1));
        }
        next
    }

    fn after_write(
        &mut self,
        written: kube::Result<Lease>,
        started: Instant,
        action: &'static str,
    ) -> Result<bool, ControllerError> {
        match written {
            Ok(lease) => {
                let first = self.held.is_none();
                self.observed = Some((Record::of(&lease), Instant::now()));
                self.held = Some(lease);
                self.renewed_at = Some(started);
                if first {
                    tracing::info!(
                        lease = %self.settings.name,
                        identity = %self.settings.identity,
                        "acquired the leader election lease"
                    );
                }
                Ok(true)
            }
            // Another replica wrote the Lease between our read and our write: it won.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::debug!(lease = %self.settings.name, action, "lost a race for the lease");
                self.held = None;
                self.renewed_at = None;
                Ok(false)
            }
            Err(e) => Err(self.api_error(action, e)),
        }
    }

    fn api_error(&self, action: &'static str, source: kube::Error) -> ControllerError {
        ControllerError::Api {
            action,
            object: format!("Lease {}/{}", self.settings.namespace, self.settings.name),
            source,
        }
    }
}

/// A running election. Dropping it stops the election without releasing the Lease (as a
/// crashed replica would); [`LeaderHandle::release`] stops it and gives the Lease up.
#[derive(Debug)]
pub struct LeaderHandle {
    leading: Arc<watch::Sender<bool>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

// === impl LeaderHandle ===

impl LeaderHandle {
    /// Leadership as it changes: `true` while this replica leads.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Stops leading, releases the Lease if held, and waits for the election to end.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.leading.send_replace(false);
        }
    }
}
