//! The [`ApiServer`] handle: starting, the kubeconfig, and direct store access for tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;

use crate::error::ApiError;
use crate::ops;
use crate::resources::{self, ResourceId};
use crate::store::{Propagation, Store};

/// One HTTP request the server answered, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The URL path, such as `/apis/networking.k8s.io/v1/namespaces/shop/ingresses`.
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// The `Content-Type` header, when sent.
    pub content_type: Option<String>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

/// State shared by the handle and the serving tasks.
pub(crate) struct Shared {
    store: Mutex<Store>,
    requests: Mutex<Vec<RequestRecord>>,
    pub(crate) addr: SocketAddr,
    pub(crate) bookmark_interval: Duration,
}

impl Shared {
    /// The store, locked. Callers never hold it across an await.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

/// Options of an [`ApiServer`] before it starts.
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    bookmark_interval: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

impl Builder {
    /// How often an idle watch that allows bookmarks gets a `BOOKMARK` (default 5 s; the
    /// real server sends one about every minute).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current Tokio runtime.
    pub async fn start(self) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            requests: Mutex::new(Vec::new()),
            addr: listener.local_addr()?,
            bookmark_interval: self.bookmark_interval,
        });
        let (stop, stopped) = signal::channel(());
        tokio::spawn(crate::http::serve(listener, Arc::clone(&shared), stopped));
        Ok(ApiServer {
            shared,
            _stop: Arc::new(stop),
        })
    }
}

/// An in-memory Kubernetes API server on loopback.
///
/// Clones share one server; it stops serving (every connection is closed) when the last
/// clone is dropped.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
    /// Dropping the last sender tells the accept loop to stop.
    _stop: Arc<signal::Sender<()>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

fn unknown_kind(api_version: &str, kind: &str) -> ApiError {
    ApiError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    }
}

fn type_of(object: &Value) -> Result<ResourceId, ApiError> {
    let field = |f: &str| object.get(f).and_then(Value::as_str).unwrap_or_default();
    resources::by_kind(field("apiVersion"), field("kind"))
        .ok_or_else(|| unknown_kind(field("apiVersion"), field("kind")))
}

impl ApiServer {
    /// Starts a server with the default options on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<ApiServer> {
        Builder::default().start().await
    }

    /// Options for a server before it starts.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kubeconfig for the server: one cluster (plain HTTP), one user without credentials,
    /// and a current context whose namespace is `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: mse-test\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: mse-test\n  user: {{}}\n\
             contexts:\n\
             - name: mse-test\n  context:\n    cluster: mse-test\n    user: mse-test\n    namespace: default\n\
             current-context: mse-test\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Creates an object (its `apiVersion` and `kind` pick the resource), as a POST would,
    /// except that `status` is kept. Fills `uid`, `resourceVersion`, `generation` 1 and
    /// `creationTimestamp`; a namespaced object without a namespace goes to `default`.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let res = type_of(&object)?;
        ops::create(
            &mut self.shared.store(),
            res,
            None,
            object,
            ops::Write::new(ops::Target::Whole),
        )
    }

    /// Creates the object or replaces it whole (status included), whatever its
    /// `resourceVersion`, like `kubectl apply`; writing what is stored changes nothing.
    ///
    /// # Panics
    /// When the object is of an unknown kind or invalid: a broken test fixture. Use
    /// [`try_apply`](Self::try_apply) to get the error instead.
    pub fn apply(&self, object: Value) -> Value {
        match self.try_apply(object) {
            Ok(stored) => stored,
            #[expect(clippy::panic, reason = "documented: a broken fixture fails the test")]
            Err(e) => panic!("ApiServer::apply: {e}"),
        }
    }

    /// [`apply`](Self::apply), returning the error instead of panicking.
    pub fn try_apply(&self, object: Value) -> Result<Value, ApiError> {
        let res = type_of(&object)?;
        ops::upsert(&mut self.shared.store(), res, object)
    }

    /// Applies every document of a multi-document YAML text, in order.
    ///
    /// # Panics
    /// On YAML that does not parse or an object [`apply`](Self::apply) refuses. Use
    /// [`try_apply_yaml`](Self::try_apply_yaml) to get the error instead.
    pub fn apply_yaml(&self, yaml: &str) -> Vec<Value> {
        match self.try_apply_yaml(yaml) {
            Ok(stored) => stored,
            #[expect(clippy::panic, reason = "documented: a broken fixture fails the test")]
            Err(e) => panic!("ApiServer::apply_yaml: {e}"),
        }
    }

    /// [`apply_yaml`](Self::apply_yaml), returning the first error instead of panicking
    /// (the documents before it stay applied).
    pub fn try_apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, ApiError> {
        let mut stored = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value: Value = serde::Deserialize::deserialize(document)
                .map_err(|e| ApiError::BadRequest(format!("invalid YAML document: {e}")))?;
            if value.is_null() {
                continue;
            }
            stored.push(self.try_apply(value)?);
        }
        Ok(stored)
    }

    /// The stored object, if any. `namespace` `None` means `default` for namespaced kinds.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let res = resources::by_kind(api_version, kind)?;
        self.shared
            .store()
            .get(&ops::key(res, namespace, name))
            .cloned()
    }

    /// Every stored object of a kind, in all namespaces, by namespace then name.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let Some(res) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        self.shared
            .store()
            .objects_of(res)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Deletes an object as a DELETE with default options would (dependents are collected;
    /// finalizers only mark it). Returns the deleted or marked object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let res = resources::by_kind(api_version, kind)?;
        self.shared
            .store()
            .delete(&ops::key(res, namespace, name), Propagation::Background)
    }

    /// Ends every open watch stream at once by cutting its connection, as a restarting API
    /// server does. New requests are served as before.
    pub fn cut_watches(&self) {
        self.shared.store().cut_watches();
    }

    /// Forgets the history of changes: a watch from an older resourceVersion gets a 410
    /// `Expired` error event, and a list continued from an older page gets 410.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// Every HTTP request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current resourceVersion (the number of writes so far).
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }
}
