//! Errors of the API server, and their `Status` answers on the wire.

use serde_json::{Value, json};

/// Why a request or a direct store call was refused. Each variant is answered over HTTP as a
/// `Status` object with the code and reason the real API server uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Create of a name that is taken (409, reason `AlreadyExists`).
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// The resource, such as `ingresses.networking.k8s.io`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The object does not exist (404, reason `NotFound`).
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// The resource, such as `ingresses.networking.k8s.io`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// A write based on a stale `resourceVersion`, or a server-side apply conflict (409,
    /// reason `Conflict`).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        /// The resource, such as `leases.coordination.k8s.io`.
        resource: String,
        /// The object's name.
        name: String,
        /// What conflicted.
        message: String,
    },
    /// The object fails validation (422, reason `Invalid`).
    #[error("{kind} \"{name}\" is invalid: {message}")]
    Invalid {
        /// The kind, such as `Event.events.k8s.io`.
        kind: String,
        /// The object's name.
        name: String,
        /// The field and the problem, such as `metadata.name: Required value`.
        message: String,
    },
    /// An `apiVersion`/`kind` pair the server does not serve (404 over HTTP).
    #[error("the server does not serve kind {kind} in {api_version}")]
    UnknownKind {
        /// The `apiVersion` asked for.
        api_version: String,
        /// The `kind` asked for.
        kind: String,
    },
    /// Malformed input: bad JSON, a kind that does not match the URL, a bad selector (400,
    /// reason `BadRequest`).
    #[error("{0}")]
    BadRequest(String),
    /// A resourceVersion older than the retained history (410, reason `Expired`).
    #[error("{0}")]
    Gone(String),
    /// A URL the server does not serve (404, reason `NotFound`).
    #[error("the server could not find the requested resource: {0}")]
    UnknownPath(String),
    /// A method the URL does not accept (405, reason `MethodNotAllowed`).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A content type the URL does not accept (415, reason `UnsupportedMediaType`).
    #[error("the body of the request was in an unknown format: {0}")]
    UnsupportedMediaType(String),
}

impl ApiError {
    /// The HTTP status code of the error's answer.
    pub fn code(&self) -> u16 {
        match self {
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::NotFound { .. } | Self::UnknownKind { .. } | Self::UnknownPath(_) => 404,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::Gone(_) => 410,
            Self::MethodNotAllowed(_) => 405,
            Self::UnsupportedMediaType(_) => 415,
        }
    }

    /// The `reason` field of the error's `Status`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::NotFound { .. } | Self::UnknownKind { .. } | Self::UnknownPath(_) => "NotFound",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Gone(_) => "Expired",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
        }
    }

    /// The error as a `Status` object, as the API server writes it.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::AlreadyExists { resource, name }
            | Self::NotFound { resource, name }
            | Self::Conflict { resource, name, .. } => Some(details(resource, name)),
            Self::Invalid { kind, name, .. } => Some(details(kind, name)),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// `details` of a `Status`: the name, and the group and kind split from a qualified name
/// (`ingresses.networking.k8s.io` -> group `networking.k8s.io`, kind `ingresses`).
fn details(qualified: &str, name: &str) -> Value {
    let (kind, group) = qualified.split_once('.').unwrap_or((qualified, ""));
    json!({"name": name, "group": group, "kind": kind})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_code_reason_and_details() {
        let err = ApiError::NotFound {
            resource: "ingresses.networking.k8s.io".into(),
            name: "shop".into(),
        };
        let status = err.status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(
            status["message"],
            "ingresses.networking.k8s.io \"shop\" not found"
        );
        assert_eq!(status["details"]["group"], "networking.k8s.io");
        assert_eq!(status["details"]["kind"], "ingresses");
        assert_eq!(
            ApiError::Gone("too old".into()).status()["reason"],
            "Expired"
        );
    }
}
