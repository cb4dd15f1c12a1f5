//! The HTTP/1.1 front of the API server: the accept loop, request decoding and recording,
//! routing to discovery, list, watch and the write operations, and `Status` answers.

mod list;
mod route;
mod watch;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinSet;

use crate::RequestRecord;
use crate::error::ApiError;
use crate::ops::{self, DeleteOptions, PatchFormat, Target, Write};
use crate::resources::{self, ResourceId};
use crate::selector::Selector;
use crate::server::Shared;
use crate::store::{Propagation, WatchFrom};

use list::{ListRequest, list_of, partial, wants_partial};
use route::{Query, Route};
use watch::WatchRequest;

/// Bodies larger than this are refused.
const MAX_BODY: usize = 64 << 20;

/// A watch without `timeoutSeconds` ends after this long, as the real server's default
/// minimum request timeout.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

type Body = BoxBody<Bytes, io::Error>;

/// Accepts connections until `shutdown` fires; dropping the returned future's task ends
/// every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: signal::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = conn.await {
                            tracing::debug!("api server connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // out of descriptors and the like: let the peer's retries come back later
                    tracing::warn!("api server accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    shared.store().cut_watches();
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let err = ApiError::BadRequest(format!("the request body could not be read: {e}"));
            return status_response(&err);
        }
    };
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(header::CONTENT_TYPE);
    let accept = header(header::ACCEPT);
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    shared.record(RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let request = ApiRequest {
        method: parts.method,
        path,
        query: Query::parse(&query),
        content_type,
        partial: wants_partial(accept.as_deref()),
        body,
    };
    match dispatch(shared, &request) {
        Ok(response) => response,
        Err(err) => status_response(&err),
    }
}

/// A request with its body read.
struct ApiRequest {
    method: Method,
    path: String,
    query: Query,
    content_type: Option<String>,
    partial: bool,
    body: Bytes,
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn status_response(err: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &err.status())
}

fn method_not_allowed(req: &ApiRequest) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "the server does not allow this method on the requested resource: {} {}",
        req.method, req.path
    ))
}

fn dispatch(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let route = route::parse(&req.path)?;
    let ok = |value: Value| Ok(json_response(StatusCode::OK, &value));
    if !matches!(route, Route::Collection { .. } | Route::Object { .. })
        && req.method != Method::GET
    {
        return Err(method_not_allowed(req));
    }
    match route {
        Route::Version => ok(resources::version_info()),
        Route::Health => Ok(Response::new(
            Full::new(Bytes::from_static(b"ok"))
                .map_err(|never| match never {})
                .boxed(),
        )),
        Route::ApiVersions => ok(resources::api_versions(&shared.addr.to_string())),
        Route::GroupList => ok(resources::api_group_list()),
        Route::Group(group) => resources::api_group(&group)
            .ok_or_else(|| ApiError::UnknownPath(req.path.clone()))
            .and_then(ok),
        Route::ResourceList { group, version } => {
            ok(resources::api_resource_list(&group, &version))
        }
        Route::Collection { res, ns, watch } => collection(shared, req, res, ns, watch),
        Route::Object {
            res,
            ns,
            name,
            status,
            watch,
        } => {
            if watch {
                let selector = format!("metadata.name={name}");
                return watch_request(shared, req, res, ns, Some(&selector));
            }
            object(shared, req, res, ns.as_deref(), &name, status)
        }
    }
}

fn collection(
    shared: &Shared,
    req: &ApiRequest,
    res: ResourceId,
    ns: Option<String>,
    watch_path: bool,
) -> Result<Response<Body>, ApiError> {
    match req.method {
        Method::GET if watch_path || req.query.flag("watch") => {
            watch_request(shared, req, res, ns, None)
        }
        Method::GET => {
            let exact_rv = match req.query.get("resourceVersionMatch") {
                Some("Exact") => Some(parse_rv(req.query.get("resourceVersion"))?.unwrap_or(0)),
                _ => None,
            };
            let list_req = ListRequest {
                res,
                ns,
                selector: selector(&req.query, None)?,
                limit: parse_number(&req.query, "limit")?,
                continue_token: req
                    .query
                    .get("continue")
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                exact_rv,
                partial: req.partial,
            };
            let value = list::list(&shared.store(), &list_req)?;
            Ok(json_response(StatusCode::OK, &value))
        }
        // writes to a namespaced collection name their namespace, as in a cluster
        Method::POST | Method::DELETE if ns.is_none() && resources::resource(res).namespaced => {
            Err(method_not_allowed(req))
        }
        Method::POST => {
            let object = body_object(req, res)?;
            let write = write(req, Target::Main);
            let created = ops::create(&mut shared.store(), res, ns.as_deref(), object, write)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        Method::DELETE => {
            let selector = selector(&req.query, None)?;
            let options = delete_options(req)?;
            let mut store = shared.store();
            let keys: Vec<(String, String)> = store
                .objects_of(res)
                .filter(|((_, o_ns, _), o)| {
                    ns.as_deref().is_none_or(|want| want == o_ns) && selector.matches(o)
                })
                .map(|((_, o_ns, name), _)| (o_ns.clone(), name.clone()))
                .collect();
            let mut deleted = Vec::new();
            for (o_ns, name) in &keys {
                deleted.push(ops::delete(&mut store, res, Some(o_ns), name, &options)?);
            }
            let metadata = json!({"resourceVersion": store.resource_version().to_string()});
            Ok(json_response(
                StatusCode::OK,
                &list_of(res, false, metadata, deleted),
            ))
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn object(
    shared: &Shared,
    req: &ApiRequest,
    res: ResourceId,
    ns: Option<&str>,
    name: &str,
    status: bool,
) -> Result<Response<Body>, ApiError> {
    let target = if status { Target::Status } else { Target::Main };
    match req.method {
        Method::GET => {
            let store = shared.store();
            let object = store
                .get(&ops::key(res, ns, name))
                .ok_or_else(|| ops::not_found(res, name))?;
            let object = if req.partial {
                partial(object)
            } else {
                object.clone()
            };
            Ok(json_response(StatusCode::OK, &object))
        }
        Method::PUT => {
            let object = body_object(req, res)?;
            let replaced = ops::replace(
                &mut shared.store(),
                res,
                ns,
                name,
                object,
                write(req, target),
            )?;
            Ok(json_response(StatusCode::OK, &replaced))
        }
        Method::PATCH => {
            let format = patch_format(req)?;
            let mut store = shared.store();
            let existed = store.get(&ops::key(res, ns, name)).is_some();
            let patched = ops::patch(
                &mut store,
                res,
                ns,
                name,
                &format,
                &req.body,
                write(req, target),
            )?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(code, &patched))
        }
        Method::DELETE if !status => {
            let options = delete_options(req)?;
            let deleted = ops::delete(&mut shared.store(), res, ns, name, &options)?;
            let code = if crate::meta::meta_str(&deleted, "deletionTimestamp").is_some()
                && crate::meta::has_finalizers(&deleted)
            {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &deleted))
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn watch_request(
    shared: &Shared,
    req: &ApiRequest,
    res: ResourceId,
    ns: Option<String>,
    name_selector: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let q = &req.query;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial_events = q.flag("sendInitialEvents");
    watch::check_streaming(
        send_initial_events,
        bookmarks,
        q.get("resourceVersionMatch"),
    )?;
    let from = match parse_rv(q.get("resourceVersion"))? {
        None | Some(0) => WatchFrom::Now,
        Some(rv) => WatchFrom::After(rv),
    };
    let timeout = parse_number(q, "timeoutSeconds")?
        .filter(|s| *s > 0)
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let watch_req = WatchRequest {
        res,
        ns,
        selector: selector(q, name_selector)?,
        from,
        bookmarks,
        send_initial_events,
        timeout,
        partial: req.partial,
    };
    let stream = watch::open(&mut shared.store(), watch_req, shared.bookmark_interval);
    let body = StreamBody::new(stream.map_ok(Frame::data)).boxed();
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn write(req: &ApiRequest, target: Target) -> Write {
    Write {
        target,
        dry_run: req.query.get("dryRun") == Some("All"),
    }
}

fn selector(q: &Query, extra_fields: Option<&str>) -> Result<Selector, ApiError> {
    let fields = match (
        q.get("fieldSelector").filter(|f| !f.is_empty()),
        extra_fields,
    ) {
        (Some(f), Some(extra)) => Some(format!("{f},{extra}")),
        (f, extra) => f.or(extra).map(str::to_owned),
    };
    Selector::parse(q.get("labelSelector"), fields.as_deref())
}

fn parse_rv(value: Option<&str>) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "resourceVersion: Invalid value: {v:?}: must be a number"
            ))
        }),
    }
}

fn parse_number<N: std::str::FromStr>(q: &Query, key: &str) -> Result<Option<N>, ApiError> {
    match q.get(key) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "{key}: Invalid value: {v:?}: must be a non-negative integer"
            ))
        }),
    }
}

/// The media type of a content type, without parameters.
fn media_type(req: &ApiRequest) -> &str {
    req.content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map_or("application/json", str::trim)
}

fn body_object(req: &ApiRequest, res: ResourceId) -> Result<Value, ApiError> {
    let kind = resources::resource(res).kind;
    let value: Value = match media_type(req) {
        "application/yaml" => {
            let text = std::str::from_utf8(&req.body).map_err(|e| {
                ApiError::BadRequest(format!("the request body of the {kind} is not UTF-8: {e}"))
            })?;
            serde_yaml_ng::from_str(text).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the request body of the {kind} is not valid YAML: {e}"
                ))
            })?
        }
        "application/json" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the request body of the {kind} is not valid JSON: {e}"
            ))
        })?,
        other => return Err(ApiError::UnsupportedMediaType(other.to_owned())),
    };
    Ok(value)
}

fn patch_format(req: &ApiRequest) -> Result<PatchFormat, ApiError> {
    match media_type(req) {
        "application/merge-patch+json" => Ok(PatchFormat::Merge),
        "application/json-patch+json" => Ok(PatchFormat::Json),
        "application/strategic-merge-patch+json" => Ok(PatchFormat::Strategic),
        "application/apply-patch+yaml" => {
            let manager = req.query.get("fieldManager").unwrap_or_default();
            if manager.is_empty() {
                return Err(ApiError::Invalid {
                    kind: "PatchOptions.meta.k8s.io".into(),
                    name: String::new(),
                    message: "fieldManager: Required value: is required for apply patch".into(),
                });
            }
            Ok(PatchFormat::Apply {
                manager: manager.to_owned(),
                force: req.query.flag("force"),
            })
        }
        other => Err(ApiError::UnsupportedMediaType(other.to_owned())),
    }
}

fn delete_options(req: &ApiRequest) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        dry_run: req.query.get("dryRun") == Some("All"),
        ..DeleteOptions::default()
    };
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the DeleteOptions in the request body are not valid JSON: {e}"
            ))
        })?
    };
    let policy = req
        .query
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    options.propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \
                 \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
    };
    let precondition = |field: &str| {
        body.get("preconditions")
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    options.precondition_rv = precondition("resourceVersion");
    options.precondition_uid = precondition("uid");
    if body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
    {
        options.dry_run = true;
    }
    Ok(options)
}
