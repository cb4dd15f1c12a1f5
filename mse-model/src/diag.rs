//! Diagnostics: the one shape every layer uses to report a problem with its input.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::object::{ObjectKey, SourceRef};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing was lost.
    Info,
    /// Something was ignored or a default was used; the rest works.
    Warning,
    /// Something the user asked for is not served (a route, a certificate, an object).
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where a problem is: file and line, object, annotation or field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    /// The file and line, when the object came from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// The object, when the problem belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectKey>,
    /// The annotation key or field path (`spec.rules[0].http.paths[1]`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Arc<str>>,
}

/// One problem found in the input, with enough context for a user to act on it.
///
/// Rendered as `file:line: Kind ns/name: key: message [code]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// A stable kebab-case identifier (`missing-service`, `duplicate-route`, ...), usable as
    /// a metric label and an Event reason.
    pub code: &'static str,
    /// Where the problem is.
    #[serde(flatten)]
    pub origin: Origin,
    /// The offending value, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong and what happens because of it.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic with no origin yet; add one with the builder methods.
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            origin: Origin::default(),
            value: None,
            message: message.into(),
        }
    }

    /// An [`Severity::Error`] diagnostic.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A [`Severity::Warning`] diagnostic.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    /// A [`Severity::Info`] diagnostic.
    pub fn info(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, code, message)
    }

    /// Sets the object.
    #[must_use]
    pub fn object(mut self, object: ObjectKey) -> Self {
        self.origin.object = Some(object);
        self
    }

    /// Sets the file and line.
    #[must_use]
    pub fn source(mut self, source: Option<SourceRef>) -> Self {
        self.origin.source = source;
        self
    }

    /// Sets the annotation key or field path.
    #[must_use]
    pub fn key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.origin.key = Some(key.into());
        self
    }

    /// Sets the offending value.
    #[must_use]
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(src) = &self.origin.source {
            write!(f, "{src}: ")?;
        }
        write!(f, "{}: ", self.severity)?;
        if let Some(obj) = &self.origin.object {
            write!(f, "{obj}: ")?;
        }
        if let Some(key) = &self.origin.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(v) = &self.value {
            write!(f, " (value {v:?})")?;
        }
        write!(f, " [{}]", self.code)
    }
}
