//! The controller loop: one reconcile applies a config's objects and writes its status.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::Resource as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller, Error as ControllerError};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use mse_model::{MSE_API_GROUP, MseIngressConfig, MseIngressConfigStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ReconcileError;
use super::objects::{INSTANCE_LABEL, MANAGED_BY, build_all};
use super::plan::Plan;
use super::status::{self, Observed};
use super::{FIELD_MANAGER, OperatorOptions};

/// How often a config is reconciled without a change, to undo edits made by hand.
const RESYNC: Duration = Duration::from_secs(300);

/// How long after a failed reconcile it is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// Every key of `status`: a merge patch sets the ones a new status lacks to `null`, so a
/// field the operator no longer reports is removed rather than kept stale.
pub(crate) const STATUS_FIELDS: [&str; 7] = [
    "phase",
    "message",
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "address",
    "conditions",
];

pub(crate) struct Context {
    client: Client,
    options: OperatorOptions,
    /// The last generation whose ignored settings were logged, by config uid: each spec's
    /// are logged once, however often it is reconciled.
    logged: Mutex<HashMap<String, i64>>,
}

impl Context {
    pub(crate) fn new(client: Client, options: OperatorOptions) -> Context {
        Context {
            client,
            options,
            logged: Mutex::default(),
        }
    }

    /// Logs the settings of `plan` that have no effect, once per config and generation.
    fn log_ignored(&self, plan: &Plan, uid: &str, generation: Option<i64>) {
        if plan.ignored.is_empty() {
            return;
        }
        let generation = generation.unwrap_or_default();
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.insert(uid.to_owned(), generation) == Some(generation) {
            return;
        }
        drop(logged);
        for i in &plan.ignored {
            tracing::info!(mseingressconfig = %plan.name, field = i.field, "setting has no effect: {}", i.reason);
        }
    }
}

pub(crate) async fn run(
    client: Client,
    options: OperatorOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let namespace = options.gateway_namespace.clone();
    let ours =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let configs = Api::<MseIngressConfig>::all(client.clone());
    let deployments = Api::<Deployment>::namespaced(client.clone(), &namespace);
    let services = Api::<Service>::namespaced(client.clone(), &namespace);
    let context = Arc::new(Context::new(client, options));
    tracing::info!(gateway_namespace = %namespace, "operator started");
    Controller::new(configs, watcher::Config::default())
        .watches(deployments, ours.clone(), owning_config)
        .watches(services, ours, owning_config)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(object = %object, "reconciled"),
                // Logged by error_policy.
                Err(ControllerError::ReconcilerFailed(..)) => {}
                Err(ControllerError::ObjectNotFound(object)) => {
                    tracing::debug!(object = %object, "reconcile for a deleted object skipped");
                }
                Err(e) => log_watch_error(&e),
            }
        })
        .await;
    tracing::info!("operator stopped");
}

/// The config that owns `child`. `Controller::owns` would do, but it gives a cluster-scoped
/// owner the child's namespace, so the same config would be queued under two keys and
/// reconciled twice at once (kube-rs/kube#1383).
fn owning_config<K: Resource>(child: K) -> Option<ObjectRef<MseIngressConfig>> {
    child
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == MseIngressConfig::KIND
                && o.api_version == MseIngressConfig::API_VERSION
        })
        .map(|o| ObjectRef::new(&o.name))
}

fn log_watch_error<E: std::error::Error>(e: &E) {
    let text = chain(e);
    if text.contains("404") {
        tracing::warn!(
            error = %text,
            "watch failed; is the MseIngressConfig CRD installed (kubectl apply -f deploy/crd.yaml)?"
        );
    } else {
        tracing::warn!(error = %text, "watch failed; retrying");
    }
}

fn error_policy(config: Arc<MseIngressConfig>, error: &ReconcileError, _: Arc<Context>) -> Action {
    tracing::warn!(
        mseingressconfig = %config.name_any(),
        kind = error.metric_label(),
        error = %describe(error),
        "reconcile failed; retrying in {}s",
        RETRY.as_secs()
    );
    Action::requeue(RETRY)
}

async fn reconcile(
    config: Arc<MseIngressConfig>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if config.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes what it owns.
        return Ok(Action::await_change());
    }
    let owner = super::owner_reference(&config).ok_or(ReconcileError::NoIdentity)?;
    let generation = config.metadata.generation;
    let previous = config.status.as_ref();
    let plan = match Plan::new(&config, &ctx.options) {
        Ok(plan) => plan,
        Err(invalid) => {
            let status = status::failed(previous, "InvalidSpec", invalid.to_string(), generation);
            write_status(&ctx, &config, status).await?;
            // Nothing to retry until the spec changes.
            return Ok(Action::await_change());
        }
    };
    ctx.log_ignored(&plan, &owner.uid, generation);
    match apply_gateway(&ctx, &plan, &owner).await {
        Ok(observed) => {
            write_status(&ctx, &config, status::applied(&plan, &observed, generation)).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(e) => {
            let status = status::failed(previous, "ApplyFailed", describe(&e), generation);
            if let Err(write) = write_status(&ctx, &config, status).await {
                tracing::warn!(mseingressconfig = %plan.name, error = %describe(&write), "status not written");
            }
            Err(e)
        }
    }
}

/// Applies every object of the gateway; answers what the Deployment and Service report.
async fn apply_gateway(
    ctx: &Context,
    plan: &Plan,
    owner: &OwnerReference,
) -> Result<Observed, ReconcileError> {
    let client = &ctx.client;
    let ns = plan.namespace.as_str();
    check_class(client, plan, owner).await?;
    let objects = build_all(plan, owner);
    apply(
        &Api::<ServiceAccount>::namespaced(client.clone(), ns),
        &objects.service_account,
    )
    .await?;
    apply(
        &Api::<ClusterRole>::all(client.clone()),
        &objects.cluster_role,
    )
    .await?;
    apply(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &objects.cluster_role_binding,
    )
    .await?;
    apply(&Api::<Role>::namespaced(client.clone(), ns), &objects.role).await?;
    apply(
        &Api::<RoleBinding>::namespaced(client.clone(), ns),
        &objects.role_binding,
    )
    .await?;
    let deployment = apply(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        &objects.deployment,
    )
    .await?;
    let service = apply(
        &Api::<Service>::namespaced(client.clone(), ns),
        &objects.service,
    )
    .await?;
    let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns);
    match &objects.pod_disruption_budget {
        Some(pdb) => drop(apply(&pdbs, pdb).await?),
        None => delete_if_present(&pdbs, &plan.name).await?,
    }
    apply(
        &Api::<IngressClass>::all(client.clone()),
        &objects.ingress_class,
    )
    .await?;
    remove_stale_classes(client, plan, owner).await?;
    Ok(Observed::from_objects(&deployment, &service))
}

/// Server-side apply of `object` under [`FIELD_MANAGER`], taking over conflicting fields.
async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, ReconcileError>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(|source| api_error("applying", object, source))
}

fn api_error<K: Resource>(action: &'static str, object: &K, source: kube::Error) -> ReconcileError
where
    K::DynamicType: Default,
{
    let name = match object.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", object.name_any()),
        None => object.name_any(),
    };
    ReconcileError::Api {
        action,
        kind: kind_of::<K>(),
        name,
        source,
    }
}

fn kind_of<K: Resource>() -> &'static str
where
    K::DynamicType: Default,
{
    // Every kind the operator writes is a k8s-openapi type with a static kind; the
    // match keeps the error's field a plain `&'static str`.
    match K::kind(&K::DynamicType::default()).as_ref() {
        "ServiceAccount" => "ServiceAccount",
        "ClusterRole" => "ClusterRole",
        "ClusterRoleBinding" => "ClusterRoleBinding",
        "Role" => "Role",
        "RoleBinding" => "RoleBinding",
        "Deployment" => "Deployment",
        "Service" => "Service",
        "PodDisruptionBudget" => "PodDisruptionBudget",
        "IngressClass" => "IngressClass",
        "MseIngressConfig" => "MseIngressConfig",
        _ => "object",
    }
}

async fn delete_if_present(
    api: &Api<PodDisruptionBudget>,
    name: &str,
) -> Result<(), ReconcileError> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(ReconcileError::Api {
            action: "deleting",
            kind: "PodDisruptionBudget",
            name: format!("{}/{name}", api.namespace().unwrap_or_default()),
            source,
        }),
    }
}

/// Refuses an IngressClass that is someone else's: another controller's class, or one
/// whose parameters or controller owner name another `MseIngressConfig`. Two configs
/// fighting over one class would otherwise rewrite it on every reconcile.
async fn check_class(
    client: &Client,
    plan: &Plan,
    owner: &OwnerReference,
) -> Result<(), ReconcileError> {
    let api = Api::<IngressClass>::all(client.clone());
    let existing =
        api.get_opt(&plan.ingress_class)
            .await
            .map_err(|source| ReconcileError::Api {
                action: "reading",
                kind: "IngressClass",
                name: plan.ingress_class.clone(),
                source,
            })?;
    let Some(class) = existing else { return Ok(()) };
    let taken = |by: String| {
        Err(ReconcileError::ClassTaken {
            class: plan.ingress_class.clone(),
            by,
        })
    };
    let spec = class.spec.unwrap_or_default();
    if let Some(controller) = spec.controller.filter(|c| c != mse_model::CONTROLLER_NAME) {
        return taken(format!("controller {controller}"));
    }
    if let Some(p) = spec.parameters.filter(|p| {
        p.api_group.as_deref() == Some(MSE_API_GROUP)
            && p.kind == "MseIngressConfig"
            && p.name != plan.name
    }) {
        return taken(format!("MseIngressConfig {}", p.name));
    }
    let other = class
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.controller == Some(true) && o.uid != owner.uid);
    match other {
        Some(o) => taken(format!("{} {}", o.kind, o.name)),
        None => Ok(()),
    }
}

/// Deletes IngressClasses this config made under an earlier class name.
async fn remove_stale_classes(
    client: &Client,
    plan: &Plan,
    owner: &OwnerReference,
) -> Result<(), ReconcileError> {
    let api = Api::<IngressClass>::all(client.clone());
    let selector = format!(
        "app.kubernetes.io/managed-by={MANAGED_BY},{INSTANCE_LABEL}={}",
        plan.name
    );
    let list_error = |source| ReconcileError::Api {
        action: "listing",
        kind: "IngressClass",
        name: selector.clone(),
        source,
    };
    let classes = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(list_error)?;
    for class in classes {
        let name = class.name_any();
        let mine = class.owner_references().iter().any(|o| o.uid == owner.uid);
        if name == plan.ingress_class || !mine {
            continue;
        }
        tracing::info!(mseingressconfig = %plan.name, ingressclass = %name, "removing the IngressClass of an earlier spec");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => return Err(api_error("deleting", &class, source)),
        }
    }
    Ok(())
}

/// Writes `next` through the `status` subresource, unless it is what the object has.
async fn write_status(
    ctx: &Context,
    config: &MseIngressConfig,
    mut next: MseIngressConfigStatus,
) -> Result<(), ReconcileError> {
    let previous = config.status.as_ref();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    status::stamp(&mut next, previous, &now);
    if previous == Some(&next) {
        return Ok(());
    }
    let name = config.name_any();
    tracing::info!(
        mseingressconfig = %name,
        phase = ?next.phase,
        ready = next.ready_replicas,
        address = next.address.as_deref().unwrap_or(""),
        message = next.message.as_deref().unwrap_or(""),
        "status"
    );
    let patch = status_patch(&next).map_err(|source| ReconcileError::Encode {
        kind: "MseIngressConfig",
        name: name.clone(),
        source,
    })?;
    let api = Api::<MseIngressConfig>::all(ctx.client.clone());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    api.patch_status(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|source| api_error("writing the status of", config, source))?;
    Ok(())
}

/// `{"status": ...}` with every field `next` lacks set to `null`.
pub(crate) fn status_patch(
    next: &MseIngressConfigStatus,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut status = serde_json::to_value(next)?;
    if let Some(map) = status.as_object_mut() {
        for key in STATUS_FIELDS {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    Ok(serde_json::json!({ "status": status }))
}

/// An error with its causes, each said once, an API server's refusal in its own words.
pub(crate) fn describe(e: &ReconcileError) -> String {
    match e {
        ReconcileError::Api {
            source: kube::Error::Api(status),
            ..
        } => {
            format!(
                "{e}: {} ({}, HTTP {})",
                status.message, status.reason, status.code
            )
        }
        other => chain(other),
    }
}

/// `e` and its sources joined with `: `, skipping a source its predecessor already quoted.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !last.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = s.source();
    }
    text
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
